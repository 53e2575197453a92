// Progress (issue 19): the counts every call kind reports, on Pool and ThreadPool, failures and
// cancelled work included; the bar as a terminal sees it (through a pseudo-terminal), and
// nothing at all when stderr is a file. MpiPool's counts are tested in tests/mpi.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "fork_helper.hpp"
#include "mproc/mproc.hpp"
#include "pool_types.hpp"
#include "task_counts.hpp"

using namespace std::chrono_literals;

namespace {

int sqr(int x) { return x * x; }
int add(int a, int b) { return a + b; }
int throw_odd(int x) {
  if (x % 2) throw std::runtime_error("odd");
  return x;
}
int nap(int x) {
  std::this_thread::sleep_for(2ms);
  return x;
}
int nap_but_fail_first(int x) {
  mproc::test::task_counts().runs.fetch_add(1);
  if (x == 0) throw std::runtime_error("the first item");
  return nap(x);
}

// What on_update was told: every call, in order, and whether two ever overlapped.
struct Log {
  std::mutex mu;
  std::vector<std::pair<std::size_t, std::size_t>> calls;
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};

  mproc::Progress progress() {
    return mproc::Progress{.on_update = [this](std::size_t done, std::size_t total) {
      if (inside.fetch_add(1) != 0) overlapped = true;
      {
        std::lock_guard lock(mu);
        calls.emplace_back(done, total);
      }
      inside.fetch_sub(1);
    }};
  }
  // The counts only grow, and the last one is done == total == n, reported once.
  void expect_reached(std::size_t n) {
    std::lock_guard lock(mu);
    ASSERT_FALSE(calls.empty());
    EXPECT_EQ(calls.back(), std::make_pair(n, n));
    for (std::size_t i = 1; i < calls.size(); ++i) EXPECT_LE(calls[i - 1].first, calls[i].first);
    EXPECT_EQ(std::count(calls.begin(), calls.end(), std::make_pair(n, n)), 1);
    EXPECT_FALSE(overlapped.load());
  }
};

std::vector<int> numbers(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

}  // namespace

template <class P>
class progress : public ::testing::Test {};
TYPED_TEST_SUITE(progress, PoolTypes, PoolNames);

TYPED_TEST(progress, MapCountsReachTheTotal) {
  TypeParam pool(2);
  Log log;
  auto v = pool.map(sqr, numbers(1000), 7, log.progress());
  log.expect_reached(1000);
  EXPECT_EQ(v[30], 900);
}

TYPED_TEST(progress, MapWithLimitsCountsReachTheTotal) {
  TypeParam pool(2);
  Log log;
  (void)pool.map(sqr, numbers(100), 3, mproc::Retries(1), log.progress());
  log.expect_reached(100);
}

TYPED_TEST(progress, MapAsyncCountsReachTheTotalBeforeItIsReady) {
  TypeParam pool(2);
  Log log;
  auto r = pool.map_async(sqr, numbers(500), 5, {}, {}, log.progress());
  EXPECT_EQ(r.get().size(), 500u);
  log.expect_reached(500);
  Log limited;
  auto r2 = pool.map_async(sqr, numbers(50), 5, mproc::Retries(0), {}, {}, limited.progress());
  r2.wait();
  limited.expect_reached(50);
}

TYPED_TEST(progress, StarmapAndItsAsyncFormCount) {
  TypeParam pool(2);
  std::vector<std::tuple<int, int>> pairs;
  for (int i = 0; i < 300; ++i) pairs.emplace_back(i, i);
  Log a, b, c;
  EXPECT_EQ(pool.starmap(add, pairs, 4, a.progress())[10], 20);
  a.expect_reached(300);
  (void)pool.starmap(add, pairs, 4, mproc::Retries(0), b.progress());
  b.expect_reached(300);
  pool.starmap_async(add, pairs, 0, {}, {}, c.progress()).wait();
  c.expect_reached(300);
}

TYPED_TEST(progress, ImapAndImapUnorderedCount) {
  TypeParam pool(2);
  Log a, b;
  long sum = 0;
  for (int x : pool.imap(sqr, numbers(200), 3, a.progress())) sum += x;
  a.expect_reached(200);
  for (int x : pool.imap_unordered(sqr, numbers(200), 3, b.progress())) sum -= x;
  b.expect_reached(200);
  EXPECT_EQ(sum, 0);
}

// An input of unknown size: the total is 0 until the input ends, then the count reaches it.
TYPED_TEST(progress, ImapOfUnsizedInputLearnsItsTotalAtTheEnd) {
  TypeParam pool(2);
  Log log;
  auto input = std::views::iota(0) | std::views::take_while([](int x) { return x < 150; });
  int n = 0;
  for (int x : pool.imap(sqr, input, 4, log.progress())) n += x >= 0;
  EXPECT_EQ(n, 150);
  log.expect_reached(150);
  std::lock_guard lock(log.mu);
  for (auto& [done, total] : log.calls) EXPECT_TRUE(total == 0 || total == 150);
}

TYPED_TEST(progress, FailedItemsAreCounted) {
  TypeParam pool(2);
  Log a, b;
  EXPECT_THROW((void)pool.map(throw_odd, numbers(101), 4, a.progress()), std::runtime_error);
  a.expect_reached(101);
  int failures = 0;
  auto results = pool.imap(throw_odd, numbers(40), 3, b.progress());
  for (auto it = results.begin(); it != results.end();) {
    try {
      ++it;
    } catch (const std::runtime_error&) {
      ++failures;
    }
  }
  b.expect_reached(40);
  EXPECT_GT(failures, 0);
}

// A map with a Progress is left at its first failed item, as one without: what has not started
// is cancelled instead of run to the end (2000 naps of 2 ms), and its items count all the same.
TYPED_TEST(progress, AMapLeftAtItsFirstFailedItemCancelsTheRest) {
  mproc::test::TaskCounts& c = mproc::test::fresh_task_counts();
  TypeParam pool(2);
  Log log;
  EXPECT_THROW((void)pool.map(nap_but_fail_first, numbers(2000), 1, log.progress()), std::runtime_error);
  log.expect_reached(2000);
  EXPECT_LT(c.runs.load(), 2000);
}

TYPED_TEST(progress, EmptyInputReportsZeroOfZero) {
  TypeParam pool(1);
  Log log;
  EXPECT_TRUE(pool.map(sqr, std::vector<int>{}, 0, log.progress()).empty());
  log.expect_reached(0);
}

// Work dropped by terminate() fails, and its items count: the total is reached all the same.
TYPED_TEST(progress, CancelledWorkIsCounted) {
  TypeParam pool(1);
  Log log;
  auto r = pool.map_async(nap, numbers(200), 1, {}, {}, log.progress());
  std::this_thread::sleep_for(10ms);
  pool.terminate();
  r.wait();
  EXPECT_FALSE(r.successful());
  log.expect_reached(200);
}

TYPED_TEST(progress, UpdatesArePaced) {
  TypeParam pool(2);
  Log log;
  (void)pool.map(sqr, numbers(20000), 1, log.progress());
  log.expect_reached(20000);
  std::lock_guard lock(log.mu);
  EXPECT_LT(log.calls.size(), 200u);  // at ~10 a second, not one per chunk
}

// --- the bar, as a terminal and a file see it ---------------------------------------------------

namespace {

// Runs body in a child whose stderr is a pseudo-terminal; returns all it wrote there.
template <class Body>
std::string through_pty(Body body) {
  std::fflush(nullptr);
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  if (pid == 0) {
    int code = 0;
    try {
      body();
    } catch (...) {
      code = 1;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  EXPECT_GT(pid, 0);
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 20000) <= 0) break;
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;  // EIO once the child and its workers have closed the terminal
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(master);
  EXPECT_TRUE(WIFEXITED(mproc::test::wait_child(pid)));
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::size_t at = 0;
  for (std::size_t next; (next = s.find(sep, at)) != std::string::npos; at = next + 1)
    parts.push_back(s.substr(at, next - at));
  parts.push_back(s.substr(at));
  return parts;
}

}  // namespace

TEST(progress_bar, OnATerminalBarsEndWithANewlineAndNeverInterleave) {
  std::string out = through_pty([] {
    mproc::Pool pool(2);
    // Two calls at once: the second bar waits for the first to end its line.
    auto a = pool.map_async(nap, numbers(300), 2, {}, {}, mproc::Progress{.desc = "first"});
    auto b = pool.map_async(nap, numbers(100), 2, {}, {}, mproc::Progress{.desc = "second"});
    a.wait();
    b.wait();
    (void)pool.map(sqr, numbers(50), 0, mproc::Progress{.desc = "third"});
  });
  ASSERT_FALSE(out.empty());
  // The terminal turns each "\n" into "\r\n".
  EXPECT_EQ(out.substr(out.size() - 2), "\r\n") << out;
  auto lines = split(out, '\n');
  lines.pop_back();  // after the last newline: nothing
  int ended = 0;
  for (const auto& line : lines) {
    // Every redraw on one line is the same call's bar.
    bool first = line.find("first") != std::string::npos, second = line.find("second") != std::string::npos,
         third = line.find("third") != std::string::npos;
    EXPECT_EQ(first + second + third, 1) << line;
    ended += line.find("100%|") != std::string::npos;
  }
  EXPECT_EQ(ended, 3) << out;  // "second" drew once "first" had ended, not never
  EXPECT_NE(out.find("300/300"), std::string::npos);
  EXPECT_NE(out.find("it/s"), std::string::npos);
}

TEST(progress_bar, UnsizedInputShowsCountAndRate) {
  std::string out = through_pty([] {
    mproc::ThreadPool pool(2);
    auto input = std::views::iota(0) | std::views::take_while([](int x) { return x < 64; });
    for (int x : pool.imap(sqr, input, 4, mproc::Progress{})) (void)x;
  });
  EXPECT_NE(out.find(" it ["), std::string::npos) << out;
  EXPECT_NE(out.find("64/64"), std::string::npos) << out;  // the total, once the input ended
  EXPECT_EQ(out.substr(out.size() - 2), "\r\n");
}

TEST(progress_bar, NothingIsWrittenWhenStderrIsAFile) {
  char path[] = "/tmp/mproc_progress_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  pid_t pid = mproc::test::fork_child([fd] {
    ::dup2(fd, 2);
    mproc::Pool pool(2);
    (void)pool.map(sqr, numbers(100), 3, mproc::Progress{});
    for (int x : pool.imap(sqr, numbers(10), 1, mproc::Progress{})) (void)x;
  });
  EXPECT_TRUE(mproc::test::exited_ok(pid));
  EXPECT_EQ(::lseek(fd, 0, SEEK_END), 0);
  // Unless asked: force draws there too, ended with a newline.
  pid = mproc::test::fork_child([fd] {
    ::dup2(fd, 2);
    mproc::ThreadPool pool(2);
    (void)pool.map(sqr, numbers(100), 3, mproc::Progress{.force = true});
  });
  EXPECT_TRUE(mproc::test::exited_ok(pid));
  std::string text(static_cast<std::size_t>(::lseek(fd, 0, SEEK_END)), '\0');
  ASSERT_EQ(::pread(fd, text.data(), text.size(), 0), static_cast<ssize_t>(text.size()));
  EXPECT_NE(text.find("100/100"), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
  ::close(fd);
  ::unlink(path);
}
