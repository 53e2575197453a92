// Pool tests that are about processes: work crossing into forked workers, faults that only a
// process boundary can raise, and a pool leaving nothing behind. Behaviour common to every
// pool is in test_behaviour.cpp.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "leak_check.hpp"
#include "mproc/mproc.hpp"

using namespace std::chrono_literals;

namespace {

int sqr(int x) { return x * x; }
int pid_of_worker(int) { return static_cast<int>(::getpid()); }
int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

// A type whose encoding always fails: its serialize throws.
struct Unsendable {
  int value = 0;
  template <class Archive>
  void serialize(Archive&) {
    throw std::runtime_error("refuses to be encoded");
  }
};
Unsendable make_unsendable(int x) { return Unsendable{x}; }
int take_unsendable(Unsendable u) { return u.value; }
int take_unsendable_and(int x, const Unsendable& u) { return x + u.value; }

// A type that encodes, but whose decoding in the worker fails.
struct Undecodable {
  int value = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    if constexpr (Archive::is_loading::value) throw std::runtime_error("refuses to be decoded");
    ar(value);
  }
};
int add_undecodable(int x, const Undecodable& u) { return x + u.value; }

struct Point {
  double x = 0, y = 0;
  std::string label;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(x, y, label);
  }
};
Point move_point(Point p, double dx) {
  p.x += dx;
  p.label += "!";
  return p;
}

std::map<std::string, std::vector<int>> histogram(const std::vector<std::string>& words) {
  std::map<std::string, std::vector<int>> out;
  for (std::size_t i = 0; i < words.size(); ++i) out[words[i]].push_back(static_cast<int>(i));
  return out;
}

int global_set_before_fork = 0;
int read_global(int) { return global_set_before_fork; }

}  // namespace

TEST(PoolProcess, TasksRunInOtherProcesses) {
  mproc::Pool pool(2);
  std::vector<int> in(64, 0);
  auto pids = pool.map(pid_of_worker, in, 1);
  std::set<int> distinct(pids.begin(), pids.end());
  EXPECT_FALSE(distinct.count(static_cast<int>(::getpid())));
  EXPECT_LE(distinct.size(), 2U);
  auto workers = pool.backend().worker_pids();
  for (int pid : distinct) EXPECT_THAT(workers, testing::Contains(pid));
}

TEST(PoolProcess, WorkersSeeStateSetBeforeTheFork) {
  global_set_before_fork = 42;
  mproc::Pool pool(1);
  global_set_before_fork = 7;  // after the fork: the worker keeps its copy
  EXPECT_EQ(pool.apply(read_global, std::tuple{0}), 42);
}

TEST(PoolProcess, UserTypesCrossThroughCereal) {
  mproc::Pool pool(2);
  Point p = pool.apply(move_point, std::tuple{Point{1.5, 2, "p"}, 2.0});
  EXPECT_DOUBLE_EQ(p.x, 3.5);
  EXPECT_EQ(p.label, "p!");
  auto h = pool.apply(histogram, std::tuple{std::vector<std::string>{"a", "b", "a"}});
  EXPECT_EQ(h["a"], (std::vector<int>{0, 2}));
  EXPECT_EQ(h["b"], (std::vector<int>{1}));
}

TEST(PoolProcess, LargeArgumentsAndResultsStreamThroughTheRing) {
  mproc::Pool pool(2);
  // 24 MiB each way: many times the ring's size.
  std::vector<int> big(6 << 20);
  std::iota(big.begin(), big.end(), 0);
  auto reversed = pool.apply(
      [](std::vector<int> v) {
        std::reverse(v.begin(), v.end());
        return v;
      },
      std::tuple{big});
  ASSERT_EQ(reversed.size(), big.size());
  EXPECT_EQ(reversed.front(), big.back());
  EXPECT_EQ(reversed.back(), big.front());
  // And the pool still works with small tasks afterwards.
  EXPECT_EQ(pool.apply(sqr, std::tuple{9}), 81);
}

TEST(PoolProcess, ResultThatCannotBeEncodedFailsOnlyThatTask) {
  mproc::Pool pool(2);
  auto bad = pool.apply_async(make_unsendable, std::tuple{1});
  auto good = pool.apply_async(sqr, std::tuple{3});
  EXPECT_THROW((void)bad.get(), mproc::SerializationError);
  EXPECT_EQ(good.get(), 9);
  try {
    (void)bad.get();
  } catch (const mproc::SerializationError& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("refuses to be encoded"));
  }
  EXPECT_EQ(pool.map(sqr, std::vector<int>{1, 2, 3}), (std::vector<int>{1, 4, 9}));
}

TEST(PoolProcess, ArgumentThatCannotBeEncodedFailsOnlyThatTask) {
  mproc::Pool pool(2);
  auto bad = pool.apply_async(take_unsendable, std::tuple{Unsendable{5}});
  EXPECT_TRUE(bad.ready());
  EXPECT_THROW((void)bad.get(), mproc::SerializationError);
  EXPECT_EQ(pool.apply(sqr, std::tuple{4}), 16);
}

// A bound value crosses with each chunk: one that cannot be encoded fails the call's tasks in
// this process, one that cannot be decoded fails them in the worker; each with its error, and
// the pool goes on.
TEST(PoolProcess, BoundValueThatCannotCrossFailsItsTasksWithItsError) {
  mproc::Pool pool(2);
  auto bad = pool.map_async(mproc::bind_back(take_unsendable_and, Unsendable{5}), std::vector<int>{1, 2, 3});
  try {
    (void)bad.get(5s);
    ADD_FAILURE() << "the bound value was sent";
  } catch (const mproc::SerializationError& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("refuses to be encoded"));
  }
  try {
    (void)pool.map(mproc::bind_back(add_undecodable, Undecodable{5}), std::vector<int>{1, 2, 3}, 1);
    ADD_FAILURE() << "the bound value was decoded";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("refuses to be decoded"));
  }
  EXPECT_EQ(pool.submit(mproc::bind_front(sqr), 7).result(5s), 49);
}

TEST(PoolProcess, GetWithTimeoutOnASleepingTask) {
  mproc::Pool pool(1);
  auto r = pool.apply_async(sleep_ms, std::tuple{300});
  auto start = std::chrono::steady_clock::now();
  EXPECT_THROW((void)r.get(50ms), mproc::TimeoutError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 250ms);
  EXPECT_EQ(r.get(5s), 300);
}

TEST(PoolProcess, TerminateWhileTasksRunReturnsPromptlyAndLeavesNoProcess) {
  auto before = mproc::test::children_of();
  mproc::Pool pool(2);
  std::vector<mproc::AsyncResult<int>> running;
  for (int i = 0; i < 6; ++i) running.push_back(pool.apply_async(sleep_ms, std::tuple{5000}));
  std::this_thread::sleep_for(50ms);
  auto start = std::chrono::steady_clock::now();
  pool.terminate();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  for (auto& r : running) EXPECT_THROW((void)r.get(1s), mproc::PoolNotRunning);
  EXPECT_EQ(mproc::test::children_of(), before);
  EXPECT_THROW((void)pool.apply_async(sqr, std::tuple{1}), mproc::PoolNotRunning);
}

TEST(PoolProcess, DestroyedWithWorkOutstandingFinishesItFirst) {
  std::atomic<int> called{0};
  std::vector<mproc::AsyncResult<int>> results;
  {
    mproc::Pool pool(2);
    for (int i = 0; i < 20; ++i)
      results.push_back(pool.apply_async(sleep_ms, std::tuple{10}, [&called](const int&) { ++called; }));
  }
  EXPECT_EQ(called.load(), 20);
  for (auto& r : results) {
    EXPECT_TRUE(r.ready());
    EXPECT_EQ(r.get(), 10);
  }
}

TEST(PoolProcess, WorkerKilledMidTaskCostsOnlyThatTask) {
  mproc::Pool pool(2);
  auto victim = pool.apply_async(
      [](int) {
        ::kill(::getpid(), SIGKILL);
        return 0;
      },
      std::tuple{0});
  try {
    (void)victim.get(5s);
    FAIL() << "expected WorkerLost";
  } catch (const mproc::WorkerLost& e) {
    EXPECT_EQ(e.signal(), SIGKILL);
    EXPECT_GT(e.pid(), 0);
  }
  std::vector<int> in(1000);
  std::iota(in.begin(), in.end(), 0);
  auto out = pool.map(sqr, in);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(out[static_cast<std::size_t>(i)], i * i);
  auto pids = pool.backend().worker_pids();
  EXPECT_EQ(std::count(pids.begin(), pids.end(), 0), 0);
}

TEST(PoolProcess, WorkerExitingWithACodeIsReported) {
  mproc::Pool pool(1);
  auto r = pool.apply_async(
      [](int code) {
        ::_exit(code);
        return 0;
      },
      std::tuple{3});
  try {
    (void)r.get(5s);
    FAIL() << "expected WorkerLost";
  } catch (const mproc::WorkerLost& e) {
    EXPECT_EQ(e.signal(), 0);
    EXPECT_EQ(e.exit_code(), 3);
  }
  EXPECT_EQ(pool.apply(sqr, std::tuple{5}), 25);
}

TEST(PoolProcess, MaxTasksPerChildReplacesWorkersWithoutLosingTasks) {
  mproc::Pool pool(mproc::PoolOptions{.processes = 2, .maxtasksperchild = 3});
  std::vector<int> in(60, 0);
  auto pids = pool.map(pid_of_worker, in, 1);
  std::set<int> distinct(pids.begin(), pids.end());
  EXPECT_GE(distinct.size(), 20U);  // 60 tasks, at most 3 per worker
  std::vector<int> nums(100);
  std::iota(nums.begin(), nums.end(), 0);
  auto sq = pool.map(sqr, nums, 1);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(sq[static_cast<std::size_t>(i)], i * i);
}

TEST(PoolProcess, InitializerRunsInEachWorker) {
  static int initialized = 0;
  mproc::Pool pool(mproc::PoolOptions{.processes = 2, .initializer = [] { initialized = 1; }});
  EXPECT_EQ(initialized, 0);  // it ran in the workers, not here
  auto seen = pool.map([](int) { return initialized; }, std::vector<int>(8, 0), 1);
  EXPECT_EQ(seen, std::vector<int>(8, 1));
}

TEST(PoolProcess, InitializerThatThrowsFailsTheConstructorAndLeavesNoWorker) {
  auto before = mproc::test::children_of();
  EXPECT_THROW(
      mproc::Pool(mproc::PoolOptions{.processes = 2, .initializer = [] { throw std::invalid_argument("no config"); }}),
      std::invalid_argument);
  EXPECT_EQ(mproc::test::children_of(), before);
}

TEST(PoolProcess, CallbackWaitingOnItsOwnPoolIsAnErrorNotAHang) {
  mproc::Pool pool(2);
  static mproc::Pool* self = nullptr;
  self = &pool;
  auto r = pool.apply_async(sqr, std::tuple{2}, [](const int&) { (void)self->apply(sqr, std::tuple{3}); });
  // Either the callback ran on a thread free to wait (fine), or it was refused: never a hang.
  try {
    EXPECT_EQ(r.get(5s), 4);
  } catch (const std::logic_error& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("callback"));
  }
}

TEST(PoolProcess, CallbackMayTerminateItsPoolButNotJoinIt) {
  mproc::Pool pool(2);
  static mproc::Pool* self = nullptr;
  self = &pool;
  static std::atomic<bool> join_refused{false};
  // join() would wait for the very thread that runs the callback: refused, as Python does.
  pool.apply_async(sqr, std::tuple{2},
                   [](const int&) {
                     self->close();
                     try {
                       self->join();
                     } catch (const std::logic_error&) {
                       join_refused = true;
                     }
                   })
      .wait(5s);
  EXPECT_TRUE(join_refused.load());
  // terminate() from a callback, as on a first error: the rest fails, nothing hangs.
  mproc::Pool other(2);
  self = &other;
  auto slow = other.apply_async(sleep_ms, std::tuple{5000});
  auto failing = other.apply_async([](int) -> int { throw std::runtime_error("first error"); }, std::tuple{0}, {},
                                   [](std::exception_ptr) { self->terminate(); });
  EXPECT_THROW((void)failing.get(5s), std::runtime_error);
  EXPECT_THROW((void)slow.get(5s), mproc::PoolNotRunning);
  EXPECT_THROW((void)other.apply(sqr, std::tuple{1}), mproc::PoolNotRunning);
}

TEST(PoolProcess, JoinLeavesNoProcessAndNoSharedMemory) {
  auto before = mproc::test::children_of();
  auto shm_before = mproc::test::shm_entries();
  {
    mproc::Pool pool(3);
    EXPECT_EQ(mproc::test::children_of().size(), before.size() + 3);  // 3 workers; the guard is no one's child
    EXPECT_EQ(pool.map(sqr, std::vector<int>{1, 2}), (std::vector<int>{1, 4}));
    pool.close();
    pool.join();
    EXPECT_EQ(mproc::test::children_of(), before);
  }
  EXPECT_EQ(mproc::test::shm_entries(), shm_before);
}

TEST(PoolProcess, PoolBuiltOnAThreadThatExitsKeepsItsWorkers) {
  std::unique_ptr<mproc::Pool> pool;
  std::thread([&pool] { pool = std::make_unique<mproc::Pool>(2); }).join();
  auto pids = pool->backend().worker_pids();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(pool->map(sqr, std::vector<int>{1, 2, 3}), (std::vector<int>{1, 4, 9}));
  EXPECT_EQ(pool->backend().worker_pids(), pids) << "workers died with the thread that built the pool";
}

namespace {
template <class Pred>
bool eventually(Pred pred) {
  for (auto end = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < end;) {
    if (pred()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return pred();
}

char process_state(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

// SIGSTOP lands asynchronously: once this returns, the worker cannot start what is sent next.
void stop_worker(int pid) {
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  ASSERT_TRUE(eventually([pid] { return process_state(pid) == 'T'; })) << "worker " << pid << " did not stop";
}

// Puts short chunks on record, so that each worker queues many ahead, and returns a worker that
// ran some: one that never started a chunk and reads nothing for 2 s is replaced as stuck at birth.
int warm_up(mproc::Pool& pool) {
  std::vector<int> warm(2000);
  std::iota(warm.begin(), warm.end(), 0);
  const int ran = pool.map(pid_of_worker, warm, 1).back();
  // A worker whose queue was taken back during the warm-up has caught up by now, and the watcher
  // has seen it (it looks every 20 ms).
  std::this_thread::sleep_for(100ms);
  return ran;
}
}  // namespace

// Work handed to a worker but not started never waits on it while another worker is free.
TEST(PoolProcess, ShortTasksDoNotWaitBehindALongOne) {
  mproc::Pool pool(2);
  (void)warm_up(pool);
  auto slow = pool.apply_async(sleep_ms, std::tuple{3000});
  std::this_thread::sleep_for(5ms);
  std::vector<mproc::AsyncResult<int>> quick;
  for (int i = 0; i < 1000; ++i) quick.push_back(pool.apply_async(sqr, std::tuple{i}));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(quick[static_cast<std::size_t>(i)].get(10s), i * i);
  EXPECT_FALSE(slow.ready()) << "short tasks waited for the long one";
  EXPECT_EQ(slow.get(10s), 3000);
}

TEST(PoolProcess, TasksQueuedOnAStoppedWorkerRunElsewhere) {
  mproc::Pool pool(mproc::PoolOptions{.processes = 2, .task_timeout = std::chrono::seconds(1)});
  const int stopped = warm_up(pool);
  stop_worker(stopped);
  std::vector<mproc::AsyncResult<int>> results;
  for (int i = 0; i < 1000; ++i) results.push_back(pool.apply_async(sqr, std::tuple{i}));
  bool all = true;
  for (int i = 0; i < 1000 && all; ++i) {
    try {
      all = results[static_cast<std::size_t>(i)].get(10s) == i * i;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "task " << i << ": " << e.what();
      all = false;
    }
  }
  ::kill(stopped, SIGCONT);
  EXPECT_TRUE(all);
  // Once moving again it takes work again.
  std::vector<int> more(2000);
  std::iota(more.begin(), more.end(), 0);
  auto out = pool.map(sqr, more, 1);
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(out[static_cast<std::size_t>(i)], i * i);
  EXPECT_THAT(pool.backend().worker_pids(), testing::Contains(stopped));
}

// A worker whose queue was taken back gets no work until it shows it moves; once it has read
// what it was sent, the work that waited meanwhile goes to it, though no result of its says so.
TEST(PoolProcess, AWorkerThatCaughtUpGetsTheWorkThatWaited) {
  mproc::Pool pool(2);
  const int stopped = warm_up(pool);
  stop_worker(stopped);
  std::vector<mproc::AsyncResult<int>> first;
  for (int i = 0; i < 1000; ++i) first.push_back(pool.apply_async(sqr, std::tuple{i}));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(first[static_cast<std::size_t>(i)].get(10s), i * i);
  // Its queue was taken back for the other worker, which now runs a long task, with short ones
  // queued behind it or waiting in the pool.
  auto slow = pool.apply_async(sleep_ms, std::tuple{3000});
  std::vector<mproc::AsyncResult<int>> quick;
  for (int i = 0; i < 1000; ++i) quick.push_back(pool.apply_async(sqr, std::tuple{i}));
  ASSERT_EQ(::kill(stopped, SIGCONT), 0);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(quick[static_cast<std::size_t>(i)].get(10s), i * i);
  EXPECT_FALSE(slow.ready()) << "short tasks waited for the long one while the caught-up worker idled";
  EXPECT_EQ(slow.get(10s), 3000);
}

namespace {
std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}
}  // namespace

// A callback runs on the pool's result thread; destroying the pool there is defined: the pool
// ends as if terminated, and that thread finishes the destruction once the callback returns.
TEST(PoolProcess, DestroyedFromItsOwnCallback) {
  const std::size_t threads_before = thread_count();
  auto pool = std::make_unique<mproc::Pool>(2);
  const auto pids = pool->backend().worker_pids();
  std::promise<int> seen;
  auto r = pool->apply_async(sqr, std::tuple{3}, [&](int v) {
    pool.reset();
    seen.set_value(v);
  });
  auto got = seen.get_future();
  ASSERT_EQ(got.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(got.get(), 9);
  EXPECT_EQ(pool, nullptr);
  EXPECT_TRUE(eventually([&] { return thread_count() == threads_before; })) << "the pool's threads were not ended";
  for (int pid : pids) EXPECT_TRUE(eventually([pid] { return ::kill(pid, 0) == -1; })) << "worker " << pid;
}
