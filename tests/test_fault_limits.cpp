// Limits a pool enforces on its workers: a task over its time limit (the pool's, or one call's
// TaskTimeout), and an initializer that keeps failing in replacement workers (reported, not
// retried forever, never a hang).
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gmock/gmock.h>

#include "fault_check.hpp"

using namespace std::chrono_literals;

namespace {
int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

// A task started at `start` under a 200 ms limit: TimeoutError naming the limit, after the limit
// and well within a second.
void expect_killed_after_200ms(mproc::AsyncResult<int>& slow, std::chrono::steady_clock::time_point start) {
  try {
    (void)slow.get(5s);
    FAIL() << "expected TimeoutError";
  } catch (const mproc::TimeoutError& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("time limit of 200 ms"));
  }
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 1s);
}
}  // namespace

TEST(FaultLimits, TaskOverItsTimeoutFailsAndItsWorkerIsReplaced) {
  mproc::Pool pool(mproc::PoolOptions{.processes = 2, .task_timeout = 200ms});
  auto start = std::chrono::steady_clock::now();
  auto slow = pool.apply_async(sleep_ms, std::tuple{5000});
  auto fast = pool.apply_async(sleep_ms, std::tuple{10});
  expect_killed_after_200ms(slow, start);
  EXPECT_EQ(fast.get(1s), 10);
  mproc::test::expect_full_pool_works(pool, 2);
}

TEST(FaultLimits, PerCallTimeoutKillsOnlyThatCallsTask) {
  mproc::Pool pool(2);  // no pool-wide limit
  auto start = std::chrono::steady_clock::now();
  auto slow = pool.apply_async(sleep_ms, std::tuple{5000}, mproc::TaskTimeout(200ms));
  auto untimed = pool.apply_async(sleep_ms, std::tuple{400});  // longer than 200 ms, but not limited
  expect_killed_after_200ms(slow, start);
  EXPECT_EQ(untimed.get(5s), 400);
  // Every chunk of a map under its limit: all results, no worker killed.
  std::vector<int> ms(8, 5);
  EXPECT_EQ(pool.map(sleep_ms, ms, 2, mproc::TaskTimeout(2s)), ms);
  EXPECT_THROW((void)pool.starmap(sleep_ms, std::vector{std::tuple{3000}}, 1, mproc::TaskTimeout(100ms)),
               mproc::TimeoutError);
  mproc::test::expect_full_pool_works(pool, 2);
}

TEST(FaultLimits, PerCallTimeoutReplacesThePoolsLimit) {
  mproc::Pool pool(mproc::PoolOptions{.processes = 2, .task_timeout = 100ms});
  EXPECT_EQ(pool.apply(sleep_ms, std::tuple{300}, mproc::TaskTimeout(3s)), 300);
  EXPECT_THROW((void)pool.apply(sleep_ms, std::tuple{300}), mproc::TimeoutError);
  EXPECT_THROW((void)pool.apply(sleep_ms, std::tuple{1}, mproc::TaskTimeout(0ms)), std::invalid_argument);
  EXPECT_THROW((void)pool.map_async(sleep_ms, std::vector{1}, 0, mproc::TaskTimeout(-1s)), std::invalid_argument);
}

TEST(FaultLimits, InitializerFailingInReplacementsIsReportedNotRetriedForever) {
  // Counts initializer runs across processes: the first worker starts, replacements fail.
  auto* runs = static_cast<std::atomic<int>*>(
      ::mmap(nullptr, sizeof(std::atomic<int>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(runs, MAP_FAILED);
  new (runs) std::atomic<int>(0);
  static std::atomic<int>* counter = nullptr;
  counter = runs;
  {
    mproc::Pool pool(mproc::PoolOptions{.processes = 1, .initializer = [] {
                                          if (counter->fetch_add(1) >= 1) throw std::runtime_error("database gone");
                                        }});
    auto killer = pool.apply_async(
        [](int) {
          ::kill(::getpid(), SIGKILL);
          return 0;
        },
        std::tuple{0});
    EXPECT_THROW((void)killer.get(5s), mproc::WorkerLost);
    auto deadline = std::chrono::steady_clock::now() + 5s;
    bool refused = false;
    while (!refused && std::chrono::steady_clock::now() < deadline) {
      try {
        (void)pool.apply_async(mproc::test::square, std::tuple{2}).get(5s);
        std::this_thread::sleep_for(10ms);  // the replacement has not failed yet
      } catch (const mproc::PoolNotRunning& e) {
        EXPECT_THAT(e.what(), testing::HasSubstr("database gone"));
        refused = true;
      }
    }
    EXPECT_TRUE(refused);
    EXPECT_LE(runs->load(), 5);  // the first, then at most a few replacements
  }
  ::munmap(runs, sizeof(std::atomic<int>));
}
