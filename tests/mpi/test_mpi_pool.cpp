// MpiPool under mpirun: gtest runs on rank 0 only; the other ranks serve its pools. ctest runs
// this as `mpirun -n 3 test_mpi_pool`, so each pool has two worker ranks.
#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/futures.hpp"
#include "mproc/mpi_pool.hpp"

using namespace std::chrono_literals;

namespace {

int sqr(int x) { return x * x; }
int mul(int a, int b) { return a * b; }
int rank_of_worker(int) { return mproc::mpi::rank(); }
int fail_on_seven(int x) {
  if (x == 7) throw std::out_of_range("seven is out of range");
  return x;
}
std::string greet(const std::string& name, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += "hello " + name + ";";
  return out;
}

class OddNumber : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
int reject_odd(int x) {
  if (x % 2) throw OddNumber("odd: " + std::to_string(x));
  return x / 2;
}

class NotRegistered : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
int throw_not_registered(int x) {
  throw NotRegistered("rank " + std::to_string(mproc::mpi::rank()) + " refuses " + std::to_string(x));
}
int throw_int(int x) { throw x; }

int initialized_on_worker = 0;
void set_initialized() { initialized_on_worker = 17; }
int read_initialized(int) { return initialized_on_worker; }

// Futures: this rank's count of counted() runs, and a task that holds its rank a while.
int runs_here = 0;
int counted(int x) {
  ++runs_here;
  return x;
}
int read_runs(int) { return runs_here; }
int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
int total_range(const std::vector<int>& row, int lo, int hi) {
  int n = 0;
  for (int x : row) n += lo <= x && x <= hi;
  return n;
}

int set_before_serve = 0;  // set by main() on every rank before the workers start serving
int read_set_before_serve(int) { return set_before_serve; }

}  // namespace

TEST(MpiPool, ApplyRunsOnAWorkerRank) {
  mproc::MpiPool pool;
  EXPECT_EQ(pool.processes(), 2U);
  EXPECT_EQ(pool.apply(sqr, std::tuple{5}), 25);
  int rank = pool.apply(rank_of_worker, std::tuple{0});
  EXPECT_TRUE(rank == 1 || rank == 2) << rank;
  EXPECT_EQ(pool.apply(greet, std::tuple{std::string("mpi"), 2}), "hello mpi;hello mpi;");
  EXPECT_EQ(pool.apply([] { return 3; }), 3);  // a captureless lambda: no function pointer sent
}

TEST(MpiPool, MapKeepsOrderAtEveryChunksize) {
  mproc::MpiPool pool;
  std::vector<int> in(1000);
  std::iota(in.begin(), in.end(), 0);
  std::vector<int> want;
  for (int x : in) want.push_back(x * x);
  for (std::size_t chunksize : {0, 1, 7, 1000}) EXPECT_EQ(pool.map(sqr, in, chunksize), want) << chunksize;
  EXPECT_TRUE(pool.map(sqr, std::vector<int>{}).empty());
}

TEST(MpiPool, MapUsesEveryWorkerRank) {
  mproc::MpiPool pool;
  auto ranks = pool.map(rank_of_worker, std::vector<int>(200, 0), 1);
  std::set<int> distinct(ranks.begin(), ranks.end());
  EXPECT_FALSE(distinct.count(0));
  EXPECT_EQ(pool.backend().worker_ranks(), (std::vector<int>{1, 2}));
}

TEST(MpiPool, Starmap) {
  mproc::MpiPool pool;
  std::vector<std::pair<int, int>> pairs;
  for (int i = 0; i < 100; ++i) pairs.emplace_back(i, i + 1);
  auto out = pool.starmap(mul, pairs, 9);
  ASSERT_EQ(out.size(), 100U);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)], i * (i + 1));
}

TEST(MpiPool, ApplyAsyncWithCallback) {
  mproc::MpiPool pool;
  std::atomic<int> got{0};
  std::atomic<int> errors{0};
  auto r = pool.apply_async(
      sqr, std::tuple{9}, [&](const int& v) { got = v; }, [&](std::exception_ptr) { ++errors; });
  EXPECT_EQ(r.get(), 81);
  pool.close();
  pool.join();  // callbacks have run by now
  EXPECT_EQ(got.load(), 81);
  EXPECT_EQ(errors.load(), 0);
}

TEST(MpiPool, ErrorCallbackAndMapAsync) {
  mproc::MpiPool pool;
  std::atomic<bool> error_seen{false};
  auto bad = pool.apply_async(fail_on_seven, std::tuple{7}, {}, [&](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::out_of_range&) {
      error_seen = true;
    } catch (...) {
    }
  });
  std::vector<int> sum_seen;
  auto m = pool.map_async(sqr, std::vector<int>{1, 2, 3}, 1, [&](const std::vector<int>& v) { sum_seen = v; });
  EXPECT_EQ(m.get(), (std::vector<int>{1, 4, 9}));
  EXPECT_THROW((void)bad.get(), std::out_of_range);
  pool.close();
  pool.join();
  EXPECT_TRUE(error_seen.load());
  EXPECT_EQ(sum_seen, (std::vector<int>{1, 4, 9}));
}

TEST(MpiPool, Imap) {
  mproc::MpiPool pool;
  std::vector<int> in(300);
  std::iota(in.begin(), in.end(), 0);
  std::vector<int> got;
  for (int x : pool.imap(sqr, in)) got.push_back(x);
  ASSERT_EQ(got.size(), 300U);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], i * i);
  std::multiset<int> unordered;
  for (int x : pool.imap_unordered(sqr, in, 4)) unordered.insert(x);
  EXPECT_EQ(unordered, std::multiset<int>(got.begin(), got.end()));
}

TEST(MpiPool, ExceptionsComeBackAsTheirType) {
  mproc::MpiPool pool;
  try {
    (void)pool.apply(fail_on_seven, std::tuple{7});
    FAIL() << "no exception";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "seven is out of range");
  }
  EXPECT_THROW(pool.map(fail_on_seven, std::vector<int>{1, 2, 7, 9}, 1), std::out_of_range);
  EXPECT_THROW(pool.apply(reject_odd, std::tuple{3}), OddNumber);
  EXPECT_EQ(pool.apply(reject_odd, std::tuple{4}), 2);
  EXPECT_EQ(pool.apply(sqr, std::tuple{3}), 9);  // the pool goes on
}

TEST(MpiPool, UnknownExceptionsComeBackAsRemoteError) {
  mproc::MpiPool pool;
  try {
    (void)pool.apply(throw_not_registered, std::tuple{5});
    FAIL() << "no exception";
  } catch (const mproc::RemoteError& e) {
    EXPECT_NE(e.type_name().find("NotRegistered"), std::string::npos) << e.type_name();
    EXPECT_NE(std::string(e.what()).find(" refuses 5"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)pool.apply(throw_int, std::tuple{3}), mproc::RemoteError);  // not even an exception
  auto r = pool.map_async(throw_not_registered, std::vector<int>{1, 2, 3});
  EXPECT_THROW((void)r.get(), mproc::RemoteError);
  EXPECT_EQ(pool.apply(sqr, std::tuple{6}), 36);
}

// A chunk that a rank cannot run at all (here: its function lies in a library that only rank 0
// has loaded) fails item by item with why, for results sent as their bytes (int, double) too.
// Progress and insights (issue 19): counts reach the total; a chunk's timing comes back with its
// results; the workers are the ranks, numbered as ranks.
TEST(MpiPool, ProgressAndInsights) {
  mproc::MpiPool pool(mproc::PoolOptions{.insights = true});
  std::size_t last_done = 0, last_total = 0;
  auto v = pool.map(sqr, std::vector<int>(300, 3), 7, mproc::Progress{.on_update = [&](std::size_t d, std::size_t t) {
                      last_done = d;
                      last_total = t;
                    }});
  EXPECT_EQ(v.size(), 300u);
  EXPECT_EQ(last_done, 300u);
  EXPECT_EQ(last_total, 300u);
  mproc::Insights s = pool.insights();
  EXPECT_EQ(s.pool, "mpi");
  ASSERT_EQ(s.workers.size(), pool.processes());
  std::size_t tasks = 0;
  for (const auto& w : s.workers) {
    tasks += w.tasks;
    EXPECT_GE(w.worker, 1u);  // ranks 1 .. n
    EXPECT_LE(w.working, w.busy);
  }
  EXPECT_EQ(tasks, 300u);
  char path[] = "/tmp/mproc_mpi_trace_XXXXXX";
  int fd = ::mkstemp(path);
  ::close(fd);
  pool.write_trace(path);
  std::string text;
  {
    FILE* f = std::fopen(path, "r");
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
    std::fclose(f);
  }
  std::remove(path);
  EXPECT_NE(text.find("\"pool\":\"mpi\""), std::string::npos);
  EXPECT_NE(text.find("\"name\":\"worker 1\""), std::string::npos);
}

TEST(MpiPool, AChunkNoRankCanRunFailsWithItsError) {
  void* plugin = dlopen(MPROC_TEST_PLUGIN, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(plugin, nullptr) << dlerror();
  auto twice = reinterpret_cast<int (*)(int)>(dlsym(plugin, "mproc_test_plugin_twice"));
  auto half = reinterpret_cast<double (*)(double)>(dlsym(plugin, "mproc_test_plugin_half"));
  ASSERT_TRUE(twice && half);
  mproc::MpiPool pool;
  auto expect_not_loaded = [](auto&& run) {
    try {
      auto got = run();
      ADD_FAILURE() << "a chunk no rank could run gave " << got.size() << " values";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("which this rank has not loaded"), std::string::npos) << e.what();
    }
  };
  expect_not_loaded([&] { return pool.map(twice, std::vector<int>{1, 2, 3, 4, 5}, 5); });
  expect_not_loaded([&] { return pool.map(half, std::vector<double>(100, 1.0), 7); });
  expect_not_loaded([&] { return std::vector<int>{pool.apply(twice, std::tuple{3})}; });
  auto r = pool.map_async(twice, std::vector<int>{1, 2}, 1);
  r.wait();
  EXPECT_FALSE(r.successful());
  EXPECT_EQ(pool.map(sqr, std::vector<int>{1, 2, 3}), (std::vector<int>{1, 4, 9}));  // the pool goes on
}

TEST(MpiPool, CloseJoinAndAfter) {
  mproc::MpiPool pool;
  auto r = pool.map_async(sqr, std::vector<int>(500, 3), 10);
  pool.close();
  EXPECT_THROW(pool.apply(sqr, std::tuple{1}), mproc::PoolNotRunning);
  pool.join();  // submitted work is finished, not dropped
  EXPECT_EQ(r.get(), std::vector<int>(500, 9));
}

TEST(MpiPool, Terminate) {
  mproc::MpiPool pool;
  auto r = pool.map_async(sqr, std::vector<int>(2000, 2), 1);
  pool.terminate();
  r.wait();
  if (!r.successful()) {
    EXPECT_THROW((void)r.get(), mproc::PoolNotRunning);
  }
  mproc::MpiPool next;  // the ranks are free again
  EXPECT_EQ(next.apply(sqr, std::tuple{4}), 16);
}

// One rank, held by four sleepers (the chunks a fresh pool hands a rank ahead of its work): what
// is submitted after them waits on rank 0, where cancel() drops it.
TEST(MpiPool, CancelDropsQueuedTasksThatThenNeverRun) {
  int runs_before = 0;
  {
    mproc::MpiPool reader(1);  // apart: a pool that timed a tiny chunk hands a rank 64 ahead
    runs_before = reader.apply(read_runs, std::tuple{0});
  }
  mproc::MpiPool pool(1);
  std::vector<mproc::Future<int>> sleepers;
  for (int i = 0; i < 4; ++i) sleepers.push_back(pool.submit(sleep_ms, 300));
  std::vector<mproc::Future<int>> queued;
  for (int i = 0; i < 50; ++i) queued.push_back(pool.submit(counted, i));
  auto list = pool.map_async(counted, std::vector<int>(20, 1), 5);
  for (auto& f : queued) EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(list.cancel());
  for (auto& f : queued) {
    EXPECT_TRUE(f.cancelled());
    EXPECT_THROW((void)f.result(5s), mproc::CancelledError);
    EXPECT_TRUE(f.cancel());  // as it was
  }
  EXPECT_THROW((void)list.get(5s), mproc::CancelledError);
  // A sleeper handed to the rank runs: neither cancel() nor terminate() stops it. (The
  // communication thread hands them over at once; the pause makes sure of it.)
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(sleepers[0].cancel());
  EXPECT_FALSE(sleepers[1].terminate());
  for (auto& f : sleepers) EXPECT_EQ(f.result(10s), 300);
  EXPECT_EQ(pool.apply(read_runs, std::tuple{0}), runs_before);  // none of them ran
}

// running() is true for the task its rank runs, false for those handed to the rank behind it
// and for those done.
TEST(MpiPool, RunningIsTheTaskItsRankRuns) {
  mproc::MpiPool pool(1);
  auto first = pool.submit(sleep_ms, 300);
  auto second = pool.submit(sleep_ms, 1);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!first.running() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(first.running());
  EXPECT_FALSE(second.running());
  EXPECT_EQ(first.result(10s), 300);
  EXPECT_FALSE(first.running());
  EXPECT_EQ(second.result(10s), 1);
  EXPECT_FALSE(second.running());
}

TEST(MpiPool, TerminateOfAQueuedTaskCancelsIt) {
  mproc::MpiPool pool(1);
  std::vector<mproc::Future<int>> sleepers;
  for (int i = 0; i < 4; ++i) sleepers.push_back(pool.submit(sleep_ms, 200));
  auto queued = pool.submit(counted, 3);
  EXPECT_TRUE(queued.terminate());
  EXPECT_THROW((void)queued.result(5s), mproc::CancelledError);
  EXPECT_TRUE(queued.cancelled());
  for (auto& f : sleepers) EXPECT_EQ(f.result(10s), 200);
}

TEST(MpiPool, ShutdownWithCancelFuturesCancelsQueuedTasks) {
  mproc::MpiPool pool(1);
  std::vector<mproc::Future<int>> sleepers;
  for (int i = 0; i < 4; ++i) sleepers.push_back(pool.submit(sleep_ms, 200));
  std::vector<mproc::Future<int>> queued;
  for (int i = 0; i < 10; ++i) queued.push_back(pool.submit(counted, i));
  std::this_thread::sleep_for(100ms);  // the sleepers are handed to the rank
  pool.shutdown(true, true);
  for (auto& f : sleepers) EXPECT_EQ(f.result(), 200);  // handed to the rank: they finished
  for (auto& f : queued) {
    EXPECT_TRUE(f.cancelled());
    EXPECT_THROW((void)f.result(), mproc::CancelledError);
  }
}

TEST(MpiPool, BoundValuesTravelToTheRanks) {
  mproc::MpiPool pool;
  std::vector<std::vector<int>> rows{{0, 4, 8, 9}, {5, 5, 1}, {}, {4, 4, 4, 8, 12}};
  EXPECT_EQ(pool.map(mproc::bind_back(total_range, 4, 8), rows, 1), (std::vector<int>{2, 2, 0, 4}));
  EXPECT_EQ(pool.submit(mproc::bind_front(greet, std::string("mpi")), 2).result(), "hello mpi;hello mpi;");
  auto twice = [](int a, int b) { return a * b; };
  EXPECT_EQ(pool.map(mproc::bind_front(twice, 2), std::vector<int>{1, 2, 3}), (std::vector<int>{2, 4, 6}));
}

TEST(MpiPool, Initializer) {
  mproc::MpiPool pool(mproc::PoolOptions{.processes = 2, .initializer = set_initialized});
  EXPECT_EQ(pool.map(read_initialized, std::vector<int>(20, 0), 1), std::vector<int>(20, 17));
}

TEST(MpiPool, WorkersSeeStateSetBeforeServing) {
  mproc::MpiPool pool;
  EXPECT_EQ(pool.apply(read_set_before_serve, std::tuple{0}), 99);
}

TEST(MpiPool, OptionsChecked) {
  EXPECT_THROW(mproc::MpiPool(3), std::invalid_argument);  // only two worker ranks
  EXPECT_THROW(mproc::MpiPool(0), std::invalid_argument);
  EXPECT_THROW(mproc::MpiPool(mproc::PoolOptions{.task_timeout = 1s}), std::invalid_argument);
  int captured = 1;
  EXPECT_THROW(mproc::MpiPool(mproc::PoolOptions{.initializer = [captured] { (void)captured; }}),
               std::invalid_argument);
  mproc::MpiPool one(1);
  EXPECT_EQ(one.processes(), 1U);
  EXPECT_THROW(mproc::MpiPool(1), std::logic_error);  // one pool at a time
  EXPECT_EQ(one.map(rank_of_worker, std::vector<int>(10, 0)), std::vector<int>(10, 1));
}

int main(int argc, char** argv) {
  set_before_serve = 99;
  mproc::register_exception<OddNumber>();
  mproc::mpi::serve();  // worker ranks stay here until rank 0 exits
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
