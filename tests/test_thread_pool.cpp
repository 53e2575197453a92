// What only ThreadPool does: it runs any callable, captures included, and refuses time limits,
// since a running thread cannot be killed. Everything it shares with Pool is in test_behaviour.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.hpp"

using namespace std::chrono_literals;

namespace {
int twice(int x) { return 2 * x; }
}  // namespace

TEST(ThreadPool, CapturingLambdasRunAndSeeTheCallersState) {
  mproc::ThreadPool pool(2);
  int offset = 40;
  EXPECT_EQ(pool.apply([&offset](int x) { return x + offset; }, std::tuple{2}), 42);
  EXPECT_EQ(pool.map([offset](int x) { return x + offset; }, std::vector{1, 2}), (std::vector{41, 42}));
}

TEST(ThreadPool, TimeLimitsAreRefused) {
  EXPECT_THROW(mproc::ThreadPool(mproc::PoolOptions{.processes = 1, .task_timeout = 1s}), std::invalid_argument);
  mproc::ThreadPool pool(1);
  EXPECT_THROW((void)pool.apply(twice, std::tuple{1}, mproc::TaskTimeout(1s)), std::invalid_argument);
  EXPECT_THROW((void)pool.map(twice, std::vector{1}, 1, mproc::TaskTimeout(1s)), std::invalid_argument);
  EXPECT_EQ(pool.apply(twice, std::tuple{4}), 8);  // the pool goes on
}

// apply_async hands the task its own reference to the job: a result dropped at once (fire and
// forget) leaves every task to run, and join() waits for them all.
TEST(ThreadPool, FireAndForgetTasksRunWhenTheirResultsAreDropped) {
  std::atomic<int> ran{0};
  {
    mproc::ThreadPool pool(2);
    for (int i = 0; i < 10000; ++i) (void)pool.apply_async([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
    auto kept = pool.apply_async(twice, std::tuple{21});
    EXPECT_EQ(kept.get(), 42);
    pool.close();
    pool.join();
  }
  EXPECT_EQ(ran.load(), 10000);
}

// A worker held busy while thousands of tasks are queued behind it: its queue's ring fills and
// the rest wait in the overflow list; every task runs once, with its own arguments, and join()
// waits for all of them.
TEST(ThreadPool, TasksQueuedBeyondTheRingAllRunOnce) {
  constexpr int kTasks = 5000;
  std::atomic<bool> release{false};
  std::vector<std::atomic<int>> runs(kTasks);
  std::vector<mproc::AsyncResult<int>> results;
  {
    mproc::ThreadPool pool(1);
    auto blocker = pool.apply_async([&release] {
      while (!release.load()) std::this_thread::sleep_for(1ms);
    });
    for (int i = 0; i < kTasks; ++i)
      results.push_back(pool.apply_async(
          [&runs](int k) {
            runs[static_cast<std::size_t>(k)].fetch_add(1);
            return 2 * k;
          },
          std::tuple{i}));
    release = true;
    for (int i = 0; i < kTasks; ++i) EXPECT_EQ(results[static_cast<std::size_t>(i)].get(), 2 * i);
    (void)blocker.get();
    // More behind a busy worker again, then close and join: none is lost.
    release = false;
    auto second = pool.apply_async([&release] {
      while (!release.load()) std::this_thread::sleep_for(1ms);
    });
    for (int i = 0; i < kTasks; ++i)
      (void)pool.apply_async([&runs](int k) { runs[static_cast<std::size_t>(k)].fetch_add(1); }, std::tuple{i});
    pool.close();
    release = true;
    pool.join();
    EXPECT_TRUE(second.ready());
  }
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(runs[static_cast<std::size_t>(i)].load(), 2) << i;
}
