// A worker that calls abort.
#include <signal.h>

#include <cstdlib>

#include "fault_check.hpp"

TEST(FaultAbort, WorkerAborts) {
  mproc::test::expect_worker_lost_then_recovers([](int) -> int { std::abort(); }, {SIGABRT, 0});
}
