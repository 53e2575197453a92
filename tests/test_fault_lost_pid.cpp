// WorkerLost names the worker that died, not the one that replaced it: its pid, signal or exit
// code, and its message.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>

#include "fault_check.hpp"

namespace {

int kill_own_worker(int) {
  ::kill(::getpid(), SIGKILL);
  return 0;
}
int exit_seven(int) { ::_exit(7); }

template <class F>
mproc::WorkerLost lose_a_worker(mproc::Pool& pool, F f, std::vector<int>& before) {
  before = pool.backend().worker_pids();
  try {
    (void)pool.apply(f, std::tuple{0});
  } catch (const mproc::WorkerLost& e) {
    return e;
  }
  throw std::runtime_error("expected WorkerLost");
}

}  // namespace

TEST(FaultLostPid, NamesTheWorkerKilledBySignal) {
  mproc::Pool pool(3);
  std::vector<int> before;
  auto e = lose_a_worker(pool, kill_own_worker, before);
  EXPECT_THAT(before, testing::Contains(e.pid())) << e.what();
  auto after = pool.backend().worker_pids();
  EXPECT_THAT(after, testing::Not(testing::Contains(e.pid()))) << "named the replacement: " << e.what();
  EXPECT_EQ(e.signal(), SIGKILL);
  EXPECT_EQ(e.exit_code(), 0);
  EXPECT_THAT(e.what(), testing::HasSubstr("worker " + std::to_string(e.pid()) + " died from signal 9"));
  mproc::test::expect_full_pool_works(pool, 3);
}

TEST(FaultLostPid, NamesTheWorkerThatExited) {
  mproc::Pool pool(3);
  std::vector<int> before;
  auto e = lose_a_worker(pool, exit_seven, before);
  EXPECT_THAT(before, testing::Contains(e.pid())) << e.what();
  EXPECT_EQ(e.signal(), 0);
  EXPECT_EQ(e.exit_code(), 7);
  EXPECT_THAT(e.what(), testing::HasSubstr("worker " + std::to_string(e.pid()) + " exited with code 7"));
  mproc::test::expect_full_pool_works(pool, 3);
}
