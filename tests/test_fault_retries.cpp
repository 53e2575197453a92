// Retries (PoolOptions::retries, mproc::Retries per call): a task lost with its worker (a
// crash, a time limit) runs again on a live worker up to that many times; an exception thrown by
// the task itself never is; when the retries run out, the last error is thrown, naming the
// attempts; a retried chunk of a map keeps its results' places.
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <numeric>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>

#include "fault_check.hpp"

using namespace std::chrono_literals;

namespace {

// Counts calls across processes: in a shared mapping made before the pools.
std::atomic<int>* g_calls = [] {
  void* p = ::mmap(nullptr, sizeof(std::atomic<int>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return new (p) std::atomic<int>(0);
}();

// Where dies_when_told's first run says it began (started), and waits to be told to die (die).
struct Signals {
  std::atomic<int> started;
  std::atomic<int> die;
};
Signals* g_signals = [] {
  void* p = ::mmap(nullptr, sizeof(Signals), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return new (p) Signals{};
}();

// Its first run says it began, then kills its worker when told; a later run returns x.
int dies_when_told(int x) {
  if (g_calls->fetch_add(1) == 0) {
    g_signals->started.store(1);
    while (!g_signals->die.load()) std::this_thread::sleep_for(1ms);
    std::abort();
  }
  return x;
}

// Kills its worker on its first `deaths` calls, then returns x * 2.
int dies_first(int deaths) {
  if (g_calls->fetch_add(1) < deaths) std::abort();
  return deaths * 2;
}

// Over its time limit on the first `slow` calls.
int slow_first(int slow) {
  if (g_calls->fetch_add(1) < slow) std::this_thread::sleep_for(10s);
  return slow;
}

int throws(int) {
  g_calls->fetch_add(1);
  throw std::runtime_error("the task's own error");
}

// For a map: item 7 kills its worker the first time it runs.
int item_seven_dies_once(int x) {
  if (x == 7 && g_calls->fetch_add(1) == 0) std::abort();
  return x * x;
}

class Retries : public ::testing::Test {
 protected:
  void SetUp() override {
    g_calls->store(0);
    g_signals->started.store(0);
    g_signals->die.store(0);
  }
};

}  // namespace

TEST_F(Retries, ALostTaskRunsAgainAndSucceeds) {
  mproc::Pool pool(mproc::PoolOptions{.processes = 2, .retries = 2});
  EXPECT_EQ(pool.apply(dies_first, std::tuple{2}), 4);  // lost twice, third attempt succeeds
  EXPECT_EQ(g_calls->load(), 3);
  mproc::test::expect_full_pool_works(pool, 2);
}

// A cancel that fails (the task runs) changes nothing: the task lost with its worker afterwards
// still gets its retry.
TEST_F(Retries, ACancelThatFailedLeavesTheRetry) {
  mproc::Pool pool(mproc::PoolOptions{.processes = 2, .retries = 1});
  auto r = pool.apply_async(dies_when_told, std::tuple{21});
  while (!g_signals->started.load()) std::this_thread::sleep_for(1ms);
  EXPECT_FALSE(r.cancel());  // it runs
  g_signals->die.store(1);
  EXPECT_EQ(r.get(30s), 21);
  EXPECT_FALSE(r.cancelled());
  EXPECT_EQ(g_calls->load(), 2);
  mproc::test::expect_full_pool_works(pool, 2);
}

TEST_F(Retries, WhenRetriesRunOutTheLastErrorNamesTheAttempts) {
  mproc::Pool pool(mproc::PoolOptions{.processes = 2, .retries = 2});
  try {
    (void)pool.apply(dies_first, std::tuple{100});
    FAIL() << "expected WorkerLost";
  } catch (const mproc::WorkerLost& e) {
    EXPECT_EQ(e.attempts(), 3);
    EXPECT_EQ(e.signal(), SIGABRT);
    EXPECT_THAT(e.what(), testing::HasSubstr("3 attempts"));
  }
  EXPECT_EQ(g_calls->load(), 3);
  mproc::test::expect_full_pool_works(pool, 2);
}

TEST_F(Retries, ATasksOwnExceptionIsNeverRetried) {
  mproc::Pool pool(mproc::PoolOptions{.processes = 2, .retries = 3});
  EXPECT_THROW((void)pool.apply(throws, std::tuple{0}), std::runtime_error);
  EXPECT_EQ(g_calls->load(), 1);
}

TEST_F(Retries, WithoutRetriesALostTaskFailsOnce) {
  mproc::Pool pool(2);
  try {
    (void)pool.apply(dies_first, std::tuple{1});
    FAIL() << "expected WorkerLost";
  } catch (const mproc::WorkerLost& e) {
    EXPECT_EQ(e.attempts(), 1);
    EXPECT_THAT(e.what(), testing::Not(testing::HasSubstr("attempts")));
  }
  EXPECT_EQ(g_calls->load(), 1);
}

TEST_F(Retries, ATaskOverItsTimeLimitIsRetried) {
  mproc::Pool pool(mproc::PoolOptions{.processes = 2, .task_timeout = 200ms, .retries = 1});
  EXPECT_EQ(pool.apply(slow_first, std::tuple{1}), 1);
  g_calls->store(0);
  try {
    (void)pool.apply(slow_first, std::tuple{5});
    FAIL() << "expected TimeoutError";
  } catch (const mproc::TimeoutError& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("2 attempts"));
  }
  EXPECT_EQ(g_calls->load(), 2);
}

TEST_F(Retries, PerCallRetriesReplaceThePools) {
  mproc::Pool pool(2);  // no retries of its own
  EXPECT_EQ(pool.apply(dies_first, std::tuple{1}, mproc::Retries(1)), 2);
  g_calls->store(0);
  EXPECT_EQ(pool.apply(slow_first, std::tuple{1}, mproc::TaskTimeout(200ms) | mproc::Retries(1)), 1);
  g_calls->store(0);
  auto r = pool.apply_async(dies_first, std::tuple{1}, mproc::Retries(3));
  EXPECT_EQ(r.get(5s), 2);
  mproc::Pool retrying(mproc::PoolOptions{.processes = 2, .retries = 5});
  g_calls->store(0);
  EXPECT_THROW((void)retrying.apply(dies_first, std::tuple{1}, mproc::Retries(0)), mproc::WorkerLost);
  EXPECT_EQ(g_calls->load(), 1);
}

TEST_F(Retries, ARetriedMapItemKeepsItsPlace) {
  mproc::Pool pool(mproc::PoolOptions{.processes = 2, .retries = 1});
  std::vector<int> xs(40);
  std::iota(xs.begin(), xs.end(), 0);
  for (std::size_t chunk : {1U, 3U}) {
    g_calls->store(0);
    auto out = pool.map(item_seven_dies_once, xs, chunk);
    ASSERT_EQ(out.size(), xs.size());
    for (int i = 0; i < 40; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)], i * i) << "chunksize " << chunk;
    EXPECT_EQ(g_calls->load(), 2);
  }
  g_calls->store(0);
  auto star = pool.starmap_async(item_seven_dies_once, std::vector{std::tuple{6}, std::tuple{7}, std::tuple{8}}, 1,
                                 mproc::Retries(1));
  EXPECT_EQ(star.get(5s), (std::vector{36, 49, 64}));
}

TEST_F(Retries, BadRetriesAreRefused) {
  EXPECT_THROW(mproc::Pool(mproc::PoolOptions{.processes = 1, .retries = -1}), std::invalid_argument);
  mproc::Pool pool(1);
  EXPECT_THROW((void)pool.apply(dies_first, std::tuple{0}, mproc::Retries(-1)), std::invalid_argument);
  mproc::ThreadPool threads(2);  // accepted; nothing is lost with a thread
  EXPECT_EQ(threads.apply([](int x) { return x; }, std::tuple{3}, mproc::Retries(2)), 3);
  EXPECT_THROW((void)threads.apply([](int x) { return x; }, std::tuple{3}, mproc::TaskTimeout(1s)),
               std::invalid_argument);
}
