// A replacement worker that never starts (as one forked while another thread of the parent held
// a lock it needs: ASan's allocator, in gcc 12, is not fork-safe) must cost nothing: the work
// queued on it runs on the others, and the pool's destructor returns.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include "fault_check.hpp"

using namespace std::chrono_literals;

namespace {

void never_start() noexcept {
  for (;;) ::pause();
}
int kill_own_worker(int) {
  ::kill(::getpid(), SIGKILL);
  return 0;
}

}  // namespace

TEST(FaultStuckWorker, WorkQueuedOnAReplacementThatNeverStartsRunsElsewhere) {
  {
    mproc::Pool pool(2);
    mproc::detail::worker_start_hook = never_start;
    auto lost = pool.apply_async(kill_own_worker, std::tuple{0});
    EXPECT_THROW((void)lost.get(10s), mproc::WorkerLost);
    // By now the replacement is forked (before the loss is reported), and stuck.
    mproc::detail::worker_start_hook = nullptr;
    std::vector<mproc::AsyncResult<int>> results;
    for (int i = 0; i < 1000; ++i) results.push_back(pool.apply_async(mproc::test::square, std::tuple{i}));
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(results[static_cast<std::size_t>(i)].get(10s), i * i) << "task " << i;
  }  // the destructor returns: it kills the worker that never read its stop
  SUCCEED();
}

// With no other worker to take its work, the stuck worker is killed and replaced.
TEST(FaultStuckWorker, AStuckOnlyWorkerIsReplaced) {
  mproc::Pool pool(1);
  mproc::detail::worker_start_hook = never_start;
  auto lost = pool.apply_async(kill_own_worker, std::tuple{0});
  EXPECT_THROW((void)lost.get(10s), mproc::WorkerLost);
  mproc::detail::worker_start_hook = nullptr;
  std::vector<mproc::AsyncResult<int>> results;
  for (int i = 0; i < 100; ++i) results.push_back(pool.apply_async(mproc::test::square, std::tuple{i}));
  for (int i = 0; i < 100; ++i) ASSERT_EQ(results[static_cast<std::size_t>(i)].get(20s), i * i) << "task " << i;
}
