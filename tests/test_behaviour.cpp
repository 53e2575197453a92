// Behaviour every pool shares, whatever runs its tasks: one typed suite, run against Pool
// (worker processes) and ThreadPool (worker threads), as CPython runs _test_multiprocessing
// under processes and threads. Task functions are plain functions or captureless lambdas, so
// that the same body compiles for Pool; callbacks run in this process and may capture.

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <list>
#include <mutex>
#include <numeric>
#include <optional>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.hpp"
#include "pool_types.hpp"
#include "task_counts.hpp"

using namespace std::chrono_literals;

namespace {

int sqr(int x) { return x * x; }
int add(int a, int b) { return a + b; }
long mul3(long a, long b, long c) { return a * b * c; }
int forty_two() { return 42; }
int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
void do_nothing(int) {}

int throw_runtime(int) { throw std::runtime_error("runtime trouble"); }
int throw_invalid(int) { throw std::invalid_argument("bad argument"); }
int throw_out_of_range(int) { throw std::out_of_range("index 7 out of range"); }
int throw_at_five(int x) {
  if (x == 5) throw std::runtime_error("five");
  return x;
}

struct RegisteredError : std::runtime_error {
  explicit RegisteredError(const std::string& what) : std::runtime_error(what) {}
};
int throw_registered(int) { throw RegisteredError("registered trouble"); }

struct UnregisteredError : std::exception {
  const char* what() const noexcept override { return "unregistered trouble"; }
};
int throw_unregistered(int) { throw UnregisteredError(); }

// For bind_front and bind_back: the article's count of a row's values within [lo, hi].
int total_range(const std::vector<int>& row, int lo, int hi) {
  return static_cast<int>(std::ranges::count_if(row, [=](int x) { return lo <= x && x <= hi; }));
}
double scale(double k, double x) { return k * x; }
std::string label(const std::string& prefix, int x, const std::string& suffix) {
  return prefix + std::to_string(x) + suffix;
}

thread_local int t_initialized = 0;
int read_initialized(int) { return t_initialized; }

// Checks that f() throws exactly E (not a subclass, not a stand-in) with the message what.
template <class E, class F>
void expect_exact_throw(F&& f, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected " << typeid(E).name();
  } catch (const std::exception& e) {
    EXPECT_EQ(typeid(e), typeid(E)) << "threw " << typeid(e).name() << ": " << e.what();
    EXPECT_EQ(std::string(e.what()), what);
  }
}

// What the callbacks of one job saw.
struct CallbackLog {
  std::mutex mu;
  int values = 0;
  int errors = 0;
  int last_value = 0;
  std::exception_ptr last_error;
  std::thread::id thread;
};

}  // namespace

template <class P>
class behaviour : public ::testing::Test {
 protected:
  static constexpr bool threads = std::is_same_v<P, mproc::ThreadPool>;
};

// Lower case, so that `ctest -R behaviour` finds the suite.
TYPED_TEST_SUITE(behaviour, PoolTypes, PoolNames);

// --- apply -----------------------------------------------------------------------------------

TYPED_TEST(behaviour, ApplyWithArgumentsAndWithout) {
  TypeParam pool(2);
  EXPECT_EQ(pool.apply(sqr, std::tuple{5}), 25);
  EXPECT_EQ(pool.apply(add, std::tuple{2, 3}), 5);
  EXPECT_EQ(pool.apply(forty_two), 42);
  EXPECT_EQ(pool.apply([](int x) { return x + 1; }, std::tuple{1}), 2);
}

TYPED_TEST(behaviour, VoidFunctionsGiveNone) {
  TypeParam pool(2);
  mproc::None none = pool.apply(do_nothing, std::tuple{1});
  (void)none;
  std::vector<int> in{1, 2, 3};
  std::vector<mproc::None> out = pool.map(do_nothing, in);
  EXPECT_EQ(out.size(), 3U);
}

TYPED_TEST(behaviour, ApplyAsyncCallsCallbackOnceOnAnotherThread) {
  TypeParam pool(2);
  CallbackLog log;
  auto r = pool.apply_async(
      sqr, std::tuple{7},
      [&log](const int& v) {
        std::lock_guard lock(log.mu);
        ++log.values;
        log.last_value = v;
        log.thread = std::this_thread::get_id();
      },
      [&log](std::exception_ptr) {
        std::lock_guard lock(log.mu);
        ++log.errors;
      });
  EXPECT_EQ(r.get(), 49);
  std::lock_guard lock(log.mu);  // ready() implies the callback has run
  EXPECT_EQ(log.values, 1);
  EXPECT_EQ(log.errors, 0);
  EXPECT_EQ(log.last_value, 49);
  EXPECT_NE(log.thread, std::this_thread::get_id());
}

TYPED_TEST(behaviour, ApplyAsyncCallsErrorCallbackOnceOnAnotherThread) {
  TypeParam pool(2);
  CallbackLog log;
  auto r = pool.apply_async(
      throw_runtime, std::tuple{1},
      [&log](const int&) {
        std::lock_guard lock(log.mu);
        ++log.values;
      },
      [&log](std::exception_ptr e) {
        std::lock_guard lock(log.mu);
        ++log.errors;
        log.last_error = e;
        log.thread = std::this_thread::get_id();
      });
  r.wait();
  EXPECT_FALSE(r.successful());
  std::lock_guard lock(log.mu);
  EXPECT_EQ(log.values, 0);
  EXPECT_EQ(log.errors, 1);
  EXPECT_NE(log.thread, std::this_thread::get_id());
  expect_exact_throw<std::runtime_error>([&] { std::rethrow_exception(log.last_error); }, "runtime trouble");
}

TYPED_TEST(behaviour, CallbacksRunOneAtATime) {
  TypeParam pool(2);
  std::atomic<bool> inside{false};
  std::atomic<int> overlaps{0}, calls{0};
  std::vector<mproc::AsyncResult<int>> results;
  for (int i = 0; i < 200; ++i)
    results.push_back(pool.apply_async(sqr, std::tuple{i}, [&](const int&) {
      if (inside.exchange(true)) ++overlaps;
      std::this_thread::sleep_for(10us);
      inside.store(false);
      ++calls;
    }));
  for (auto& r : results) r.wait();
  EXPECT_EQ(calls.load(), 200);
  EXPECT_EQ(overlaps.load(), 0);
}

// --- map and starmap -------------------------------------------------------------------------

TYPED_TEST(behaviour, MapTakesAnyInputRangeAndKeepsOrder) {
  TypeParam pool(2);
  std::vector<int> v(1000);
  std::iota(v.begin(), v.end(), 0);
  std::vector<int> expected;
  for (int x : v) expected.push_back(x * x);

  EXPECT_EQ(pool.map(sqr, v), expected);
  std::list<int> l(v.begin(), v.end());
  EXPECT_EQ(pool.map(sqr, l), expected);
  EXPECT_EQ(pool.map(sqr, std::views::iota(0, 1000) | std::views::transform([](int x) { return x; })), expected);

  // A single-pass input range: each element can be read once.
  std::istringstream text("3 1 4 1 5");
  EXPECT_EQ(pool.map(sqr, std::views::istream<int>(text)), (std::vector<int>{9, 1, 16, 1, 25}));
}

TYPED_TEST(behaviour, MapOfNothingIsEmpty) {
  TypeParam pool(2);
  std::vector<int> none;
  EXPECT_TRUE(pool.map(sqr, none).empty());
  EXPECT_TRUE(pool.map(sqr, std::views::iota(0, 0)).empty());
  EXPECT_TRUE(pool.map_async(sqr, none).get().empty());
}

TYPED_TEST(behaviour, MapChunksizeDoesNotChangeTheResult) {
  TypeParam pool(2);
  std::vector<int> v(257);
  std::iota(v.begin(), v.end(), -100);
  std::vector<int> expected;
  for (int x : v) expected.push_back(x * x);
  for (std::size_t chunksize : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{100000}})
    EXPECT_EQ(pool.map(sqr, v, chunksize), expected) << "chunksize " << chunksize;
}

TYPED_TEST(behaviour, MapAsyncDeliversToCallback) {
  TypeParam pool(2);
  CallbackLog log;
  std::vector<int> seen;
  auto r = pool.map_async(sqr, std::views::iota(0, 100), 3, [&](const std::vector<int>& out) {
    std::lock_guard lock(log.mu);
    ++log.values;
    seen = out;
    log.thread = std::this_thread::get_id();
  });
  std::vector<int> got = r.get();
  ASSERT_EQ(got.size(), 100U);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], i * i);
  std::lock_guard lock(log.mu);
  EXPECT_EQ(log.values, 1);
  EXPECT_EQ(seen, got);
  EXPECT_NE(log.thread, std::this_thread::get_id());
}

TYPED_TEST(behaviour, MapAsyncOfNothingStillCallsBack) {
  TypeParam pool(2);
  std::atomic<int> calls{0};
  std::vector<int> none;
  auto r = pool.map_async(sqr, none, 0, [&](const std::vector<int>& out) {
    EXPECT_TRUE(out.empty());
    ++calls;
  });
  EXPECT_TRUE(r.get().empty());
  EXPECT_EQ(calls.load(), 1);
}

TYPED_TEST(behaviour, MapAsyncFailureCallsErrorCallback) {
  TypeParam pool(2);
  std::atomic<int> values{0}, errors{0};
  auto r = pool.map_async(
      throw_at_five, std::views::iota(0, 20), 2, [&](const std::vector<int>&) { ++values; },
      [&](std::exception_ptr) { ++errors; });
  expect_exact_throw<std::runtime_error>([&] { (void)r.get(); }, "five");
  EXPECT_EQ(values.load(), 0);
  EXPECT_EQ(errors.load(), 1);
}

TYPED_TEST(behaviour, StarmapUnpacksTuplesPairsAndArrays) {
  TypeParam pool(2);
  std::vector<std::tuple<int, int>> tuples{{1, 2}, {3, 4}, {5, 6}};
  EXPECT_EQ(pool.starmap(add, tuples), (std::vector<int>{3, 7, 11}));
  std::vector<std::pair<int, int>> pairs{{10, 1}, {20, 2}};
  EXPECT_EQ(pool.starmap(add, pairs, 1), (std::vector<int>{11, 22}));
  std::vector<std::array<long, 3>> arrays{{1, 2, 3}, {2, 3, 4}};
  EXPECT_EQ(pool.starmap(mul3, arrays), (std::vector<long>{6, 24}));
  std::vector<std::tuple<int, int>> none;
  EXPECT_TRUE(pool.starmap(add, none).empty());
}

TYPED_TEST(behaviour, StarmapAsync) {
  TypeParam pool(2);
  std::atomic<int> calls{0};
  std::vector<std::pair<int, int>> pairs;
  for (int i = 0; i < 50; ++i) pairs.emplace_back(i, i);
  auto r =
      pool.starmap_async(add, pairs, 0, [&](const std::vector<int>& out) { calls += static_cast<int>(out.size()); });
  std::vector<int> got = r.get();
  ASSERT_EQ(got.size(), 50U);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], 2 * i);
  EXPECT_EQ(calls.load(), 50);
}

// --- imap ------------------------------------------------------------------------------------

TYPED_TEST(behaviour, ImapIsLazyAndOrdered) {
  TypeParam pool(2);
  std::atomic<int> reads{0};
  auto input = std::views::iota(0, 1000) | std::views::transform([&reads](int x) {
                 ++reads;
                 return x;
               });
  auto results = pool.imap(sqr, input);
  int expect = 0;
  for (int x : results) {
    if (expect == 0) {
      EXPECT_LT(reads.load(), 1000) << "imap read all its input before the first result";
    }
    EXPECT_EQ(x, expect * expect);
    ++expect;
  }
  EXPECT_EQ(expect, 1000);
}

TYPED_TEST(behaviour, ImapChunkedAndEmpty) {
  TypeParam pool(2);
  std::vector<int> got;
  for (int x : pool.imap(sqr, std::views::iota(0, 100), 7)) got.push_back(x);
  ASSERT_EQ(got.size(), 100U);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], i * i);
  std::vector<int> none;
  for (int x : pool.imap(sqr, none)) ADD_FAILURE() << "unexpected result " << x;
}

TYPED_TEST(behaviour, ImapTaskErrorReachesTheLoop) {
  TypeParam pool(2);
  std::vector<int> got;
  expect_exact_throw<std::runtime_error>(
      [&] {
        for (int x : pool.imap(throw_at_five, std::views::iota(0, 10))) got.push_back(x);
      },
      "five");
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
}

// Python's test_imap_handle_iterable_exception: an input that throws at item k gives the
// results of the items before k first, then throws there; the range then ends.
TYPED_TEST(behaviour, ImapInputErrorComesAfterTheResultsBeforeIt) {
  TypeParam pool(2);
  for (std::size_t chunksize : {1U, 4U}) {
    std::atomic<int> reads{0};
    auto input = std::views::iota(0, 100) | std::views::transform([&reads](int x) {
                   ++reads;
                   if (x == 30) throw std::out_of_range("input ran dry");
                   return x;
                 });
    auto results = pool.imap(sqr, input, chunksize);
    std::vector<int> got;
    expect_exact_throw<std::out_of_range>(
        [&] {
          for (int x : results) got.push_back(x);
        },
        "input ran dry");
    ASSERT_EQ(got.size(), 30U) << "chunksize " << chunksize;
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], static_cast<int>(i * i));
    int read = reads.load();
    EXPECT_EQ(results.next(), std::nullopt) << "chunksize " << chunksize;
    EXPECT_EQ(reads.load(), read) << "the input was read again after it threw";
  }
}

TYPED_TEST(behaviour, ImapInputErrorAtTheFirstItem) {
  TypeParam pool(2);
  // Twice: the pool is unchanged by the first.
  for (int round = 0; round < 2; ++round) {
    auto input = std::views::iota(0, 10) | std::views::transform([](int x) -> int {
                   throw std::invalid_argument("no input " + std::to_string(x));
                 });
    auto results = pool.imap(sqr, input);
    expect_exact_throw<std::invalid_argument>([&] { (void)results.next(); }, "no input 0");
    EXPECT_EQ(results.next(), std::nullopt);
  }
  EXPECT_EQ(pool.map(sqr, std::vector<int>{1, 2, 3}), (std::vector<int>{1, 4, 9}));
}

TYPED_TEST(behaviour, ImapUnorderedInputErrorComesAfterTheResultsBeforeIt) {
  TypeParam pool(2);
  auto input = std::views::iota(0, 100) | std::views::transform([](int x) {
                 if (x == 30) throw std::out_of_range("input ran dry");
                 return x;
               });
  std::vector<int> got;
  expect_exact_throw<std::out_of_range>(
      [&] {
        for (int x : pool.imap_unordered(sqr, input, 4)) got.push_back(x);
      },
      "input ran dry");
  std::sort(got.begin(), got.end());
  ASSERT_EQ(got.size(), 30U);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], static_cast<int>(i * i));
  // The pool goes on: nothing of the failed call is left in it.
  std::vector<int> again;
  for (int x : pool.imap(sqr, std::views::iota(0, 50), 3)) again.push_back(x);
  ASSERT_EQ(again.size(), 50U);
  EXPECT_EQ(again.back(), 49 * 49);
}

TYPED_TEST(behaviour, ImapUnorderedGivesEveryResult) {
  TypeParam pool(2);
  std::vector<int> got;
  for (int x : pool.imap_unordered(sqr, std::views::iota(0, 200), 4)) got.push_back(x);
  std::sort(got.begin(), got.end());
  std::vector<int> expected;
  for (int i = 0; i < 200; ++i) expected.push_back(i * i);
  EXPECT_EQ(got, expected);
}

TYPED_TEST(behaviour, ImapUnorderedIsInCompletionOrder) {
  TypeParam pool(2);
  // The slow task is first in the input but not first out.
  std::vector<int> in{300, 1, 1, 1};
  std::vector<int> got;
  for (int x : pool.imap_unordered(sleep_ms, in)) got.push_back(x);
  ASSERT_EQ(got.size(), 4U);
  EXPECT_NE(got.front(), 300);
  EXPECT_EQ(std::count(got.begin(), got.end(), 300), 1);
}

// --- AsyncResult -----------------------------------------------------------------------------

TYPED_TEST(behaviour, AsyncResultWaitsAndTimesOut) {
  TypeParam pool(2);
  auto r = pool.apply_async(sleep_ms, std::tuple{300});
  EXPECT_FALSE(r.ready());
  EXPECT_THROW((void)r.successful(), std::logic_error);
  EXPECT_THROW((void)r.get(10ms), mproc::TimeoutError);
  EXPECT_FALSE(r.wait(10ms));
  r.wait();
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.successful());
  EXPECT_EQ(r.get(), 300);
  EXPECT_EQ(r.get(1ms), 300);
  EXPECT_TRUE(r.wait(std::chrono::seconds(0)));
}

TYPED_TEST(behaviour, AsyncResultOfAFailure) {
  TypeParam pool(2);
  auto r = pool.apply_async(throw_invalid, std::tuple{1});
  EXPECT_TRUE(r.wait(5s));
  EXPECT_TRUE(r.ready());
  EXPECT_FALSE(r.successful());
  expect_exact_throw<std::invalid_argument>([&] { (void)r.get(); }, "bad argument");
  auto copy = r;  // copies share the result
  expect_exact_throw<std::invalid_argument>([&] { (void)copy.get(1s); }, "bad argument");
}

// --- exceptions ------------------------------------------------------------------------------

TYPED_TEST(behaviour, StandardExceptionsKeepTheirTypeAndMessage) {
  TypeParam pool(2);
  expect_exact_throw<std::runtime_error>([&] { pool.apply(throw_runtime, std::tuple{1}); }, "runtime trouble");
  expect_exact_throw<std::invalid_argument>([&] { pool.apply(throw_invalid, std::tuple{1}); }, "bad argument");
  expect_exact_throw<std::out_of_range>([&] { pool.apply(throw_out_of_range, std::tuple{1}); }, "index 7 out of range");
  std::vector<int> in{1, 2, 3};
  expect_exact_throw<std::out_of_range>([&] { pool.map(throw_out_of_range, in); }, "index 7 out of range");
  expect_exact_throw<std::runtime_error>([&] { pool.map(throw_at_five, std::views::iota(0, 10), 1); }, "five");
}

TYPED_TEST(behaviour, RegisteredExceptionKeepsItsType) {
  mproc::register_exception<RegisteredError>();
  TypeParam pool(2);
  expect_exact_throw<RegisteredError>([&] { pool.apply(throw_registered, std::tuple{1}); }, "registered trouble");
}

TYPED_TEST(behaviour, UnregisteredException) {
  TypeParam pool(2);
  if constexpr (TestFixture::threads) {
    // Nothing crosses a process boundary: the exception object itself arrives.
    EXPECT_THROW(pool.apply(throw_unregistered, std::tuple{1}), UnregisteredError);
  } else {
    try {
      pool.apply(throw_unregistered, std::tuple{1});
      ADD_FAILURE() << "no exception";
    } catch (const mproc::RemoteError& e) {
      EXPECT_NE(e.type_name().find("UnregisteredError"), std::string::npos) << e.type_name();
      EXPECT_NE(std::string(e.what()).find("unregistered trouble"), std::string::npos) << e.what();
    }
  }
}

TYPED_TEST(behaviour, InputRangeThatThrowsReachesTheCaller) {
  TypeParam pool(2);
  auto input = std::views::iota(0, 100) | std::views::transform([](int x) {
                 if (x == 40) throw std::invalid_argument("bad row 40");
                 return x;
               });
  expect_exact_throw<std::invalid_argument>([&] { pool.map(sqr, input); }, "bad row 40");
  expect_exact_throw<std::invalid_argument>([&] { (void)pool.map_async(sqr, input); }, "bad row 40");
  EXPECT_EQ(pool.apply(sqr, std::tuple{3}), 9);  // the pool goes on
}

// --- life cycle ------------------------------------------------------------------------------

TYPED_TEST(behaviour, BadOptionsThrowInvalidArgument) {
  EXPECT_THROW(TypeParam(0), std::invalid_argument);
  EXPECT_THROW(TypeParam(-2), std::invalid_argument);
  EXPECT_THROW(TypeParam(mproc::PoolOptions{.processes = 1, .maxtasksperchild = 0}), std::invalid_argument);
  EXPECT_THROW(TypeParam(mproc::PoolOptions{.processes = 1, .maxtasksperchild = -1}), std::invalid_argument);
}

TYPED_TEST(behaviour, InitializerRunsInEachWorker) {
  TypeParam pool(mproc::PoolOptions{.processes = 2, .initializer = [] { t_initialized = 7; }, .maxtasksperchild = 3});
  std::vector<int> in(40, 0);
  for (int v : pool.map(read_initialized, in, 1)) EXPECT_EQ(v, 7);
  EXPECT_EQ(t_initialized, 0);  // not in the caller
}

TYPED_TEST(behaviour, SubmittingAfterCloseThrowsPoolNotRunning) {
  TypeParam pool(2);
  pool.close();
  std::vector<int> in{1, 2};
  EXPECT_THROW(pool.apply(sqr, std::tuple{1}), mproc::PoolNotRunning);
  EXPECT_THROW((void)pool.apply_async(sqr, std::tuple{1}), mproc::PoolNotRunning);
  EXPECT_THROW(pool.map(sqr, in), mproc::PoolNotRunning);
  EXPECT_THROW((void)pool.starmap_async(add, std::vector<std::pair<int, int>>{{1, 2}}), mproc::PoolNotRunning);
  EXPECT_THROW((void)pool.imap(sqr, in), mproc::PoolNotRunning);
  pool.join();
  EXPECT_THROW(pool.apply(sqr, std::tuple{1}), mproc::PoolNotRunning);
}

TYPED_TEST(behaviour, JoinBeforeCloseIsALogicError) {
  TypeParam pool(2);
  EXPECT_THROW(pool.join(), std::logic_error);
  EXPECT_EQ(pool.apply(sqr, std::tuple{4}), 16);  // still running
}

TYPED_TEST(behaviour, CloseThenJoinFinishesTheWork) {
  TypeParam pool(2);
  std::vector<mproc::AsyncResult<int>> results;
  for (int i = 0; i < 20; ++i) results.push_back(pool.apply_async(sleep_ms, std::tuple{2}));
  pool.close();
  pool.join();
  for (auto& r : results) {
    EXPECT_TRUE(r.ready());
    EXPECT_EQ(r.get(), 2);
  }
  pool.join();  // again: nothing to do
}

TYPED_TEST(behaviour, TerminateWithTasksRunningReturnsPromptly) {
  TypeParam pool(2);
  std::vector<mproc::AsyncResult<int>> results;
  for (int i = 0; i < 40; ++i) results.push_back(pool.apply_async(sleep_ms, std::tuple{100}));
  std::this_thread::sleep_for(20ms);  // let the first tasks start
  auto start = std::chrono::steady_clock::now();
  pool.terminate();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  for (auto& r : results) EXPECT_TRUE(r.wait(1s));
  EXPECT_THROW((void)results.back().get(), mproc::PoolNotRunning);
  EXPECT_THROW(pool.apply(sqr, std::tuple{1}), mproc::PoolNotRunning);
  pool.join();  // after terminate: returns at once
}

TYPED_TEST(behaviour, DestructorFinishesOutstandingWork) {
  std::atomic<int> callbacks{0};
  std::vector<mproc::AsyncResult<int>> results;
  std::optional<mproc::AsyncResult<std::vector<int>>> list;
  {
    TypeParam pool(2);
    for (int i = 0; i < 30; ++i)
      results.push_back(pool.apply_async(sleep_ms, std::tuple{1}, [&callbacks](const int&) { ++callbacks; }));
    list = pool.map_async(sqr, std::views::iota(0, 10), 1, [&callbacks](const std::vector<int>&) { ++callbacks; });
  }
  EXPECT_EQ(callbacks.load(), 31);
  for (auto& r : results) {
    EXPECT_TRUE(r.ready());
    EXPECT_EQ(r.get(), 1);
  }
  EXPECT_TRUE(list->ready());
  EXPECT_EQ(list->get().size(), 10U);
}

// --- futures (concurrent.futures): submit, Future, cancel, as_completed, wait -----------------

namespace {

// Counters every worker sees, threads or processes (task_counts.hpp).
using Shared = mproc::test::TaskCounts;
using mproc::test::await_started;
using mproc::test::block;
Shared& shared() { return mproc::test::task_counts(); }
// Called first in each test, before its pool forks.
Shared& fresh_shared() { return mproc::test::fresh_task_counts(); }
int count_run(int x) { return mproc::test::counted(x); }
std::vector<int> range_of(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

}  // namespace

TYPED_TEST(behaviour, SubmitGivesAFutureThatIsAnAsyncResult) {
  TypeParam pool(2);
  mproc::Future<int> f = pool.submit(add, 2, 3);
  static_assert(std::is_same_v<mproc::Future<int>, mproc::AsyncResult<int>>);
  EXPECT_EQ(f.result(), 5);
  EXPECT_EQ(f.result(1s), 5);
  EXPECT_EQ(f.get(), 5);
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.running());
  EXPECT_FALSE(f.cancelled());
  EXPECT_FALSE(f.cancel());  // done: too late
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_EQ(pool.submit(forty_two).result(), 42);
  std::string s = "text";
  EXPECT_EQ(
      pool.submit([](const std::string& x, int n) { return x.size() + static_cast<std::size_t>(n); }, s, 2).result(),
      6U);
}

TYPED_TEST(behaviour, FutureExceptionAndTimeouts) {
  fresh_shared();
  TypeParam pool(2);
  auto bad = pool.submit(throw_runtime, 1);
  std::exception_ptr e = bad.exception();
  ASSERT_NE(e, nullptr);
  expect_exact_throw<std::runtime_error>([&] { std::rethrow_exception(e); }, "runtime trouble");
  EXPECT_THROW((void)bad.result(), std::runtime_error);
  auto slow = pool.submit(block, 1);
  EXPECT_THROW((void)slow.result(10ms), mproc::TimeoutError);
  EXPECT_THROW((void)slow.exception(10ms), mproc::TimeoutError);
  await_started(1);
  EXPECT_TRUE(slow.running());
  EXPECT_FALSE(slow.done());
  shared().release = 1;
  EXPECT_EQ(slow.exception(5s), nullptr);
  EXPECT_FALSE(slow.running());
}

TYPED_TEST(behaviour, DoneCallbackRunsOnceAndAtOnceWhenDone) {
  fresh_shared();
  TypeParam pool(2);
  std::atomic<int> calls{0};
  std::atomic<int> seen{0};
  auto f = pool.submit(block, 7);
  f.add_done_callback([&](const mproc::Future<int>& g) {
    seen = g.result();  // done: result() works inside
    ++calls;
  });
  EXPECT_EQ(calls.load(), 0);
  shared().release = 1;
  f.wait();
  // It runs after the state turns done, on the completing thread: give it a moment.
  for (int i = 0; i < 1000 && calls.load() == 0; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(seen.load(), 7);
  int later = 0;
  f.add_done_callback([&](const mproc::Future<int>&) { ++later; });
  EXPECT_EQ(later, 1);  // already done: called before add_done_callback returned
  EXPECT_EQ(calls.load(), 1);
}

TYPED_TEST(behaviour, DoneCallbackExceptionIsReportedAndThePoolGoesOn) {
  TypeParam pool(2);
  testing::internal::CaptureStderr();
  auto f = pool.submit(sqr, 3);
  f.add_done_callback([](const mproc::Future<int>&) { throw std::runtime_error("callback trouble"); });
  f.wait();
  auto g = pool.submit(sqr, 4);
  g.wait();
  g.add_done_callback([](const mproc::Future<int>&) { throw std::runtime_error("late trouble"); });
  for (int i = 0; i < 10; ++i) EXPECT_EQ(pool.submit(sqr, i).result(), i * i);
  // f's callback runs after f turns done, on the thread that completed it: joined, that thread
  // has reported it (a preempted one could report after the ten round trips above).
  pool.close();
  pool.join();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("callback trouble"), std::string::npos) << err;
  EXPECT_NE(err.find("late trouble"), std::string::npos) << err;
  EXPECT_EQ(f.result(), 9);  // the callback's exception is not the task's
}

TYPED_TEST(behaviour, DoneCallbackMaySubmitMoreWork) {
  TypeParam pool(2);
  std::promise<int> next;
  auto f = pool.submit(sqr, 3);
  f.add_done_callback([&](const mproc::Future<int>& g) {
    auto h = pool.submit(sqr, g.result());
    h.add_done_callback([&](const mproc::Future<int>& k) { next.set_value(k.result()); });
  });
  auto got = next.get_future();
  ASSERT_EQ(got.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(got.get(), 81);
}

TYPED_TEST(behaviour, CancelKeepsAQueuedTaskFromEverRunning) {
  Shared& s = fresh_shared();
  {
    TypeParam pool(1);
    auto blocker = pool.submit(block, 0);
    await_started(1);
    std::vector<mproc::Future<int>> queued;
    for (int i = 0; i < 20; ++i) queued.push_back(pool.submit(count_run, i));
    std::atomic<int> saw_cancelled{0};
    for (auto& f : queued) {
      EXPECT_TRUE(f.cancel());
      EXPECT_TRUE(f.cancelled());
      EXPECT_TRUE(f.done());  // at once
      EXPECT_THROW((void)f.result(), mproc::CancelledError);
      EXPECT_THROW((void)f.exception(), mproc::CancelledError);
      EXPECT_TRUE(f.cancel());  // again: as the first said
      f.add_done_callback([&](const mproc::Future<int>& g) {
        if (g.cancelled()) ++saw_cancelled;
      });
    }
    EXPECT_EQ(saw_cancelled.load(), 20);
    EXPECT_FALSE(blocker.cancel());  // running
    EXPECT_FALSE(blocker.cancelled());
    s.release = 1;
    EXPECT_EQ(blocker.result(), 0);
    EXPECT_EQ(pool.submit(count_run, 5).result(), 5);
  }
  EXPECT_EQ(s.runs.load(), 1);  // only the last one
}

TYPED_TEST(behaviour, CancelOfAMapDropsTheChunksNotStarted) {
  Shared& s = fresh_shared();
  {
    TypeParam pool(1);
    auto blocker = pool.submit(block, 0);
    await_started(1);
    auto all = pool.map_async(count_run, range_of(50), 1);
    EXPECT_TRUE(all.cancel());
    EXPECT_TRUE(all.cancelled());
    s.release = 1;
    EXPECT_THROW((void)all.get(), mproc::CancelledError);
    EXPECT_EQ(pool.map(count_run, range_of(3)).size(), 3U);
  }
  EXPECT_EQ(s.runs.load(), 3);
}

TYPED_TEST(behaviour, CancelRacingWithStartNeverBothRunsAndCancels) {
  Shared& s = fresh_shared();
  int cancelled = 0;
  {
    TypeParam pool(2);
    std::vector<mproc::Future<int>> futures;
    for (int i = 0; i < 1000; ++i) {
      futures.push_back(pool.submit(count_run, i));
      if (i % 3 == 0) std::this_thread::yield();
      if (futures.back().cancel()) ++cancelled;
    }
    for (int i = 0; i < 1000; ++i) {
      auto& f = futures[static_cast<std::size_t>(i)];
      if (f.cancelled())
        EXPECT_THROW((void)f.result(), mproc::CancelledError);
      else
        EXPECT_EQ(f.result(), i);
    }
  }
  EXPECT_EQ(s.runs.load(), 1000 - cancelled);
}

// Cancels that take queued tasks back, then a cancel of the running task (which fails): the
// tasks cancelled first never run. On Pool, the queued tasks wait in the worker's ring, sent
// (after tiny tasks, a worker is fed ahead of its work); a later revocation with only the running
// task in flight once let the worker claim them (test_dispatch.cpp forces each step).
TYPED_TEST(behaviour, CancelledQueuedTasksNeverRunAfterACancelOfTheRunningOne) {
  Shared& s = fresh_shared();
  TypeParam pool(1);
  EXPECT_EQ(pool.map(sqr, range_of(200), 1).size(), 200u);  // short chunks: a worker is fed ahead
  auto running = pool.submit(block, 7);
  await_started(1);
  auto d = pool.submit(count_run, 1);
  auto e = pool.submit(count_run, 2);
  EXPECT_TRUE(d.cancel());
  EXPECT_TRUE(e.cancel());
  EXPECT_FALSE(running.cancel());  // it runs
  s.release = 1;
  EXPECT_EQ(running.result(10s), 7);
  EXPECT_THROW((void)d.result(), mproc::CancelledError);
  EXPECT_THROW((void)e.result(), mproc::CancelledError);
  EXPECT_EQ(pool.map(sqr, range_of(50), 1).size(), 50u);  // the worker has read its ring by now
  EXPECT_EQ(s.runs.load(), 0);
}

TYPED_TEST(behaviour, AsCompletedYieldsInCompletionOrder) {
  TypeParam pool(2);
  // The short task goes in once the long one runs, so that it cannot queue behind it on a
  // loaded machine where the second worker starts late; the long one leaves it ample time.
  std::vector<mproc::Future<int>> futures{pool.submit(sleep_ms, 1500)};
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!futures[0].running() && !futures[0].done() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  futures.push_back(pool.submit(sleep_ms, 1));
  std::vector<int> order;
  for (mproc::Future<int>& f : mproc::as_completed(futures)) order.push_back(f.result());
  EXPECT_EQ(order, (std::vector<int>{1, 1500}));
  int n = 0;  // 0 futures: an empty range
  for (auto& f : mproc::as_completed(std::vector<mproc::Future<int>>{})) n += f.result();
  EXPECT_EQ(n, 0);
}

TYPED_TEST(behaviour, AsCompletedOverMixedResultsAndSeveralPools) {
  TypeParam a(2);
  TypeParam b(1);
  std::vector<mproc::Future<std::vector<int>>> futures{
      a.map_async(sqr, range_of(4)),
      b.submit([](int n) { return std::vector<int>(static_cast<std::size_t>(n), n); }, 2),
      b.starmap_async(add, std::vector<std::tuple<int, int>>{{1, 2}})};
  std::vector<std::vector<int>> got;
  for (auto& f : mproc::as_completed(futures, 5s)) got.push_back(f.result());
  std::ranges::sort(got);
  EXPECT_EQ(got, (std::vector<std::vector<int>>{{0, 1, 4, 9}, {2, 2}, {3}}));
}

TYPED_TEST(behaviour, AsCompletedThrowsTimeoutErrorWhenTimeRunsOut) {
  Shared& s = fresh_shared();
  TypeParam pool(2);
  std::vector<mproc::Future<int>> futures{pool.submit(sqr, 2), pool.submit(block, 1)};
  futures[0].wait();  // done before the time starts: a loaded machine may start a worker late
  std::vector<int> got;
  auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(
      {
        for (auto& f : mproc::as_completed(futures, 50ms)) got.push_back(f.result());
      },
      mproc::TimeoutError);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);
  EXPECT_EQ(got, std::vector<int>{4});
  s.release = 1;
}

TYPED_TEST(behaviour, WaitReturnsWhenAsked) {
  Shared& s = fresh_shared();
  TypeParam pool(3);
  std::vector<mproc::Future<int>> futures{pool.submit(block, 1), pool.submit(sqr, 3), pool.submit(throw_at_five, 5)};
  auto [done, not_done] = mproc::wait(futures, mproc::FIRST_EXCEPTION);
  ASSERT_FALSE(done.empty());
  EXPECT_TRUE(std::ranges::any_of(done, [](auto& f) { return f.exception() != nullptr; }));
  // The blocked one still runs (sqr may or may not be done yet).
  EXPECT_TRUE(std::ranges::any_of(not_done, [](auto& f) { return !f.done(); }));
  futures[1].wait();
  auto first = mproc::wait(futures, 10ms, mproc::FIRST_COMPLETED);
  EXPECT_EQ(first.done.size(), 2U);
  auto timed = mproc::wait(futures, 20ms);
  EXPECT_EQ(timed.not_done.size(), 1U);
  s.release = 1;
  auto all = mproc::wait(futures);
  EXPECT_EQ(all.done.size(), 3U);
  EXPECT_TRUE(all.not_done.empty());
  EXPECT_TRUE(mproc::wait(std::vector<mproc::Future<int>>{}).done.empty());
}

// A wait or as_completed that returns takes back the done callbacks it left on the futures not
// yet done: a loop of wait(FIRST_COMPLETED) calls over the same pending futures leaves none behind.
TYPED_TEST(behaviour, WaitAndAsCompletedTakeBackTheirCallbacks) {
  Shared& s = fresh_shared();
  TypeParam pool(2);
  auto blocked = pool.submit(block, 1);
  auto quick = pool.submit(sqr, 3);
  quick.wait();
  mproc::detail::JobBase& job = mproc::detail::FutureAccess::job(blocked);
  for (int i = 0; i < 100; ++i) {
    auto [done, not_done] = mproc::wait(std::vector{blocked, quick}, mproc::FIRST_COMPLETED);
    ASSERT_EQ(done.size(), 1U);
    ASSERT_EQ(not_done.size(), 1U);
  }
  EXPECT_EQ(job.on_done_count(), 0U);
  for (int i = 0; i < 100; ++i) {
    for (auto& f : mproc::as_completed(std::vector{blocked, quick})) {
      EXPECT_EQ(f.result(), 9);
      break;  // the range goes with its callback on blocked
    }
  }
  EXPECT_EQ(job.on_done_count(), 0U);
  std::atomic<int> seen{0};
  blocked.add_done_callback([&seen](const mproc::Future<int>& f) { seen = f.result(); });
  EXPECT_EQ(job.on_done_count(), 1U);  // a user's callback stays until it runs
  s.release = 1;
  EXPECT_EQ(blocked.result(10s), 1);
  // The callback runs on the thread that completed the future, maybe after result() returned.
  for (int i = 0; i < 1000 && seen.load() == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(seen.load(), 1);
  EXPECT_EQ(job.on_done_count(), 0U);
}

TYPED_TEST(behaviour, FuturesOutliveTheirPool) {
  std::vector<mproc::Future<int>> futures;
  {
    TypeParam pool(2);
    for (int i = 0; i < 10; ++i) futures.push_back(pool.submit(sqr, i));
  }
  for (int i = 0; i < 10; ++i) {
    auto& f = futures[static_cast<std::size_t>(i)];
    EXPECT_TRUE(f.done());
    EXPECT_FALSE(f.cancel());
    EXPECT_FALSE(f.running());
    EXPECT_EQ(f.result(), i * i);
  }
  EXPECT_EQ(mproc::wait(futures, 1s).done.size(), 10U);
}

TYPED_TEST(behaviour, ExecutorNamesArePoolNames) {
  static_assert(std::is_same_v<mproc::ProcessPoolExecutor, mproc::Pool>);
  static_assert(std::is_same_v<mproc::ThreadPoolExecutor, mproc::ThreadPool>);
  static_assert(std::is_base_of_v<mproc::Error, mproc::CancelledError>);
}

TYPED_TEST(behaviour, ShutdownWithCancelFuturesCancelsQueuedWork) {
  Shared& s = fresh_shared();
  TypeParam pool(1);
  auto blocker = pool.submit(block, 0);
  await_started(1);
  std::vector<mproc::Future<int>> queued;
  for (int i = 0; i < 10; ++i) queued.push_back(pool.submit(count_run, i));
  auto list = pool.map_async(count_run, range_of(10), 1);
  std::thread releaser([&s] {
    std::this_thread::sleep_for(50ms);
    s.release = 1;
  });
  pool.shutdown(true, true);
  releaser.join();
  EXPECT_EQ(blocker.result(), 0);  // running: it finished
  for (auto& f : queued) {
    EXPECT_TRUE(f.cancelled());
    EXPECT_THROW((void)f.result(), mproc::CancelledError);
    EXPECT_TRUE(f.cancel());  // cancel after shutdown: as it was
  }
  EXPECT_THROW((void)list.get(), mproc::CancelledError);
  EXPECT_EQ(s.runs.load(), 0);
  EXPECT_THROW((void)pool.submit(sqr, 1), mproc::PoolNotRunning);
}

TYPED_TEST(behaviour, ShutdownWithoutCancelFinishesTheWork) {
  TypeParam pool(2);
  std::vector<mproc::Future<int>> futures;
  for (int i = 0; i < 20; ++i) futures.push_back(pool.submit(sqr, i));
  pool.shutdown();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(futures[static_cast<std::size_t>(i)].result(), i * i);
}

TYPED_TEST(behaviour, AMapThatFailsCancelsItsChunksNotStarted) {
  Shared& s = fresh_shared();
  {
    TypeParam pool(1);
    // Item 0 fails at once; most of the 200 chunks after it (1 ms each) are never run.
    std::vector<int> items = range_of(201);
    auto f = [](int x) {
      if (x == 0) return throw_runtime(x);
      std::this_thread::sleep_for(1ms);
      return count_run(x);
    };
    EXPECT_THROW((void)pool.map(f, items, 1), std::runtime_error);
  }
  EXPECT_LT(s.runs.load(), 100);
}

TYPED_TEST(behaviour, ImapBuffersizeBoundsTheReadAheadAndADroppedRangeCancels) {
  Shared& s = fresh_shared();
  {
    TypeParam pool(1);
    std::atomic<int> read{0};
    auto counted = std::views::iota(0, 100000) | std::views::transform([&read](int x) {
                     ++read;
                     return x;
                   });
    {
      auto it = pool.imap(count_run, counted, 1, 4);
      int n = 0;
      for (int x : it) {
        EXPECT_EQ(x, n);
        if (++n == 3) break;
      }
      EXPECT_LE(read.load(), 3 + 4);
    }
    pool.shutdown();
  }
  EXPECT_LE(s.runs.load(), 3 + 4);
}

TYPED_TEST(behaviour, TerminateStopsARunningTaskWhereThePoolCan) {
  Shared& s = fresh_shared();
  TypeParam pool(2);
  auto queued_blocker = pool.submit(block, 0);
  await_started(1);
  if constexpr (TestFixture::threads) {
    // A task given a std::stop_token is asked to stop; one without cannot be stopped once started.
    auto stoppable = pool.submit(
        [](int x, std::stop_token token) {
          while (!token.stop_requested()) std::this_thread::sleep_for(1ms);
          return -x;
        },
        5);
    while (!stoppable.running()) std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(stoppable.terminate());
    EXPECT_EQ(stoppable.result(5s), -5);
    EXPECT_FALSE(queued_blocker.terminate());
    s.release = 1;
    EXPECT_EQ(queued_blocker.result(), 0);
  } else {
    // Its worker is killed and replaced; the future throws CancelledError; the pool goes on whole.
    auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(queued_blocker.terminate());
    EXPECT_THROW((void)queued_blocker.result(5s), mproc::CancelledError);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_TRUE(queued_blocker.cancelled());
    s.release = 1;
    EXPECT_EQ(pool.map(sqr, range_of(100)).size(), 100U);
    auto pids = pool.backend().worker_pids();
    EXPECT_EQ(std::ranges::count(pids, 0), 0);
  }
}

// --- bind_front, bind_back: functools.partial ------------------------------------------------

TYPED_TEST(behaviour, BindBackBindsTheArticlesBounds) {
  TypeParam pool(2);
  std::vector<std::vector<int>> rows{{0, 4, 8, 9}, {5, 5, 1}, {}, {4, 4, 4, 8, 12}};
  std::vector<int> want{2, 2, 0, 4};
  EXPECT_EQ(pool.map(mproc::bind_back(total_range, 4, 8), rows), want);
  EXPECT_EQ(pool.map(mproc::bind_back(total_range, 4, 8), rows, 1), want);  // a chunk per row
  EXPECT_EQ(pool.map_async(mproc::bind_back(total_range, 0, 4), rows).get(), (std::vector<int>{2, 1, 0, 3}));
  std::vector<int> streamed;
  for (int n : pool.imap(mproc::bind_back(total_range, 4, 8), rows)) streamed.push_back(n);
  EXPECT_EQ(streamed, want);
}

TYPED_TEST(behaviour, BindFrontAndBackOnEveryCall) {
  TypeParam pool(2);
  EXPECT_EQ(pool.map(mproc::bind_front(scale, 2.5), std::vector<double>{1, 2}), (std::vector<double>{2.5, 5}));
  EXPECT_EQ(pool.apply(mproc::bind_front(add, 40), std::tuple{2}), 42);
  EXPECT_EQ(pool.submit(mproc::bind_back(add, 40), 2).result(), 42);
  EXPECT_EQ(pool.apply_async(mproc::bind_front(mul3, 2L), std::tuple{3L, 4L}).get(), 24);
  EXPECT_EQ(pool.starmap(mproc::bind_back(mul3, 5L), std::vector<std::tuple<long, long>>{{1, 2}, {3, 4}}),
            (std::vector<long>{10, 60}));
  // Values that are not sent as bytes (strings), on both sides, and a bind of a bind.
  auto labelled = mproc::bind_back(mproc::bind_front(label, std::string("<")), std::string(">"));
  EXPECT_EQ(pool.map(labelled, range_of(3)), (std::vector<std::string>{"<0>", "<1>", "<2>"}));
  // Nothing bound; a captureless lambda bound.
  EXPECT_EQ(pool.apply(mproc::bind_front(forty_two)), 42);
  auto minus = [](int a, int b) { return a - b; };
  EXPECT_EQ(pool.map(mproc::bind_back(minus, 1), range_of(3)), (std::vector<int>{-1, 0, 1}));
  // Each chunk carries the values: many chunks, one bound vector.
  std::vector<int> big(10000, 5);
  auto counts =
      pool.map(mproc::bind_front([](const std::vector<int>& v, int x) { return v[static_cast<std::size_t>(x)]; }, big),
               range_of(100), 1);
  EXPECT_EQ(counts, std::vector<int>(100, 5));
}

// A bound value is its own copy: changing the original afterwards changes nothing.
TYPED_TEST(behaviour, BoundValuesAreCopiedWhenBound) {
  TypeParam pool(1);
  std::vector<int> row{4, 5, 6};
  int hi = 8;
  auto f = mproc::bind_back(total_range, 5, hi);
  hi = 0;
  EXPECT_EQ(pool.map(f, std::vector<std::vector<int>>{row}), std::vector<int>{2});
  EXPECT_EQ(f(row), 2);  // and callable here as well
}

// --- as_completed and wait: each future once, however often it is given ----------------------

TYPED_TEST(behaviour, AsCompletedAndWaitTakeEachFutureOnce) {
  Shared& s = fresh_shared();
  TypeParam pool(2);
  auto a = pool.submit(sqr, 3);
  auto b = pool.submit(block, 1);
  std::vector<mproc::Future<int>> futures{a, a, b, a, b};
  (void)a.result();  // done before the timeouts below start (a loaded machine starts workers late)
  std::vector<int> got;
  EXPECT_THROW(
      {
        for (auto& f : mproc::as_completed(futures, 100ms)) got.push_back(f.result());
      },
      mproc::TimeoutError);
  EXPECT_EQ(got, std::vector<int>{9});  // a once; b not done
  auto first = mproc::wait(futures, 10ms, mproc::FIRST_COMPLETED);
  EXPECT_EQ(first.done.size(), 1U);
  EXPECT_EQ(first.not_done.size(), 1U);
  s.release = 1;
  got.clear();
  for (auto& f : mproc::as_completed(futures)) got.push_back(f.result());
  std::ranges::sort(got);
  EXPECT_EQ(got, (std::vector<int>{1, 9}));
  auto all = mproc::wait(futures);
  ASSERT_EQ(all.done.size(), 2U);  // in input order, first occurrences
  EXPECT_EQ(all.done[0].result(), 9);
  EXPECT_EQ(all.done[1].result(), 1);
  EXPECT_TRUE(all.not_done.empty());
}
