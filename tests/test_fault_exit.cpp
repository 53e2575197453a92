// A worker that calls _exit(3), and one that calls std::exit(4).
#include <unistd.h>

#include <cstdlib>

#include "fault_check.hpp"

TEST(FaultExit, WorkerCallsUnderscoreExit) {
  mproc::test::expect_worker_lost_then_recovers([](int) -> int { ::_exit(3); }, {0, 3});
}

TEST(FaultExit, WorkerCallsStdExit) {
  mproc::test::expect_worker_lost_then_recovers([](int) -> int { std::exit(4); }, {0, 4});
}
