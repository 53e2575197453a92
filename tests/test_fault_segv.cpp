// A worker that segfaults.
#include <signal.h>

#include "fault_check.hpp"

namespace {
int segfault(int) {
  volatile int* null = nullptr;
  *null = 1;
  return 0;
}
}  // namespace

TEST(FaultSegv, WorkerSegfaults) { mproc::test::expect_worker_lost_then_recovers(segfault, {SIGSEGV, 0}); }
