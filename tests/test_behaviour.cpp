// Behaviour every pool shares, whatever runs its tasks: one typed suite, run against Pool
// (worker processes) and ThreadPool (worker threads), as CPython runs _test_multiprocessing
// under processes and threads. Task functions are plain functions or captureless lambdas, so
// that the same body compiles for Pool; callbacks run in this process and may capture.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <list>
#include <mutex>
#include <numeric>
#include <optional>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.hpp"

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

using PoolTypes = ::testing::Types<mproc::Pool, mproc::ThreadPool>;
class PoolNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, mproc::ThreadPool> ? "ThreadPool" : "Pool";
  }
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
