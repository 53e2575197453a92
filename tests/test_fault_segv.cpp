// A worker that segfaults.
#include <signal.h>

#include "fault_check.hpp"

namespace {
// A real invalid store, not one UndefinedBehaviorSanitizer stops first.
[[gnu::no_sanitize("undefined")]] int segfault(int) {
  volatile int* null = nullptr;
  *null = 1;
  return 0;
}
}  // namespace

TEST(FaultSegv, WorkerSegfaults) { mproc::test::expect_worker_lost_then_recovers(segfault, {SIGSEGV, 0}); }
