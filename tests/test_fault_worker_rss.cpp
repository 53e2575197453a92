// The leak guard (PoolOptions::max_worker_rss): a worker whose resident set grows past the limit
// is replaced between tasks; no task fails, and what was queued on it runs elsewhere.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <numeric>
#include <set>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "fault_check.hpp"

namespace {

// Leaks 50 MB, touched so that it is resident, and says which worker ran it.
int leak_50mb(int) {
  constexpr std::size_t kLeak = 50 << 20;
  auto* p = static_cast<char*>(std::malloc(kLeak));
  if (!p) return -1;
  std::memset(p, 1, kLeak);
  asm volatile("" : : "r"(p) : "memory");  // leaked on purpose: never freed
  return static_cast<int>(::getpid());
}

int leak_and_square(int x) {
  (void)leak_50mb(0);
  return x * x;
}

}  // namespace

TEST(WorkerRss, ALeakingWorkerIsReplacedEveryFewCallsAndNoTaskFails) {
  mproc::Pool pool(mproc::PoolOptions{.processes = 1, .max_worker_rss = std::size_t{200} << 20});
  std::vector<int> pids;
  for (int i = 0; i < 16; ++i) pids.push_back(pool.apply(leak_50mb, std::tuple{0}));
  std::set<int> distinct(pids.begin(), pids.end());
  EXPECT_GE(distinct.size(), 4U);
  // No worker ran more than 4 calls in a row: 4 x 50 MB is past 200 MB.
  int run = 1;
  for (std::size_t i = 1; i < pids.size(); ++i) {
    run = pids[i] == pids[i - 1] ? run + 1 : 1;
    EXPECT_LE(run, 4) << "worker " << pids[i] << " was not replaced";
    EXPECT_GT(pids[i], 0);
  }
}

TEST(WorkerRss, AMapOnLeakingWorkersGetsEveryResult) {
  mproc::Pool pool(mproc::PoolOptions{.processes = 2, .max_worker_rss = std::size_t{200} << 20});
  std::vector<int> xs(20);
  std::iota(xs.begin(), xs.end(), 0);
  auto out = pool.map(leak_and_square, xs, 1);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)], i * i);
  mproc::test::expect_full_pool_works(pool, 2);
}

TEST(WorkerRss, BadOrUnsupportedLimitsAreRefused) {
  EXPECT_THROW(mproc::Pool(mproc::PoolOptions{.processes = 1, .max_worker_rss = 0}), std::invalid_argument);
  EXPECT_THROW(mproc::ThreadPool(mproc::PoolOptions{.processes = 1, .max_worker_rss = 1 << 30}), std::invalid_argument);
}
