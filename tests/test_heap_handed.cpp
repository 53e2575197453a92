// A big result (a frame in the shared heap) is read by the thread that waits for it, not by the
// pool's result thread (collect.hpp, JobBase::hand_to_waiter): its fresh pages are committed on the
// caller's CPU, and two callers' results are read at once. Whatever the timing, the result is read
// once and whole: by the waiter, by the last of several waiters, or by the result thread when the
// waiter left; a pool ended meanwhile waits for the read; a done callback that ends the pool runs
// without a hang. A caller that waits for a big vector or string, as big as its last one, commits
// the memory it will read it into while it waits (codec's prepare_spare), and drops that memory
// when the result turns out small.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/detail/buffer.hpp"
#include "mproc/mproc.hpp"

using namespace std::chrono_literals;

namespace {

// The thread that decoded the last Traced in this process.
std::atomic<std::thread::id> g_decoded_on{};

// A result that notes which thread decodes it.
struct Traced {
  std::vector<char> bytes;
  template <class Archive>
  void save(Archive& ar) const {
    ar(bytes);
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(bytes);
    g_decoded_on.store(std::this_thread::get_id());
  }
};

std::size_t big() { return mproc::detail::heap_spill_bytes() * 4; }

// After ms, a result big enough to cross through the heap, filled with fill.
Traced big_after(int ms, char fill) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return Traced{std::vector<char>(big(), fill)};
}

// As big_after, or kills its worker first (die).
Traced big_or_die(int ms, char fill, bool die) {
  if (die) ::kill(::getpid(), SIGKILL);
  return big_after(ms, fill);
}

// After ms, n bytes of fill: a result the caller reads into a spare it readied while it waited.
std::vector<char> bytes_after(int ms, std::size_t n, char fill) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return std::vector<char>(n, fill);
}
// Past glibc's largest mmap threshold (32 MB): such a vector's memory is the kernel's before it is
// made and after it is freed, so the process's resident anonymous memory shows it.
constexpr std::size_t kBytes = std::size_t{40} << 20;

// Whether memory freed leaves the process's resident memory at once: not under AddressSanitizer,
// whose quarantine keeps it.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kFreesAreSeen = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kFreesAreSeen = false;
#else
constexpr bool kFreesAreSeen = true;
#endif
#else
constexpr bool kFreesAreSeen = true;
#endif

// This process's resident anonymous memory, from /proc/self/status.
std::size_t anon_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("RssAnon:", 0) == 0) return std::stoul(line.substr(8)) * 1024;
  return 0;
}

// Calls pool.apply(bytes_after, {ms, n, fill}) and returns its result; at half of ms (the worker
// still asleep, the caller waiting), notes by how much the process's anonymous memory grew since
// the call began.
std::vector<char> apply_noting_growth(mproc::Pool& pool, int ms, std::size_t n, char fill, std::ptrdiff_t& grew) {
  const auto before = static_cast<std::ptrdiff_t>(anon_bytes());
  std::thread watcher([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms / 2));
    grew = static_cast<std::ptrdiff_t>(anon_bytes()) - before;
  });
  std::vector<char> back = pool.apply(bytes_after, std::tuple{ms, n, fill});
  watcher.join();
  return back;
}

bool whole(const std::vector<char>& v, std::size_t n, char fill) {
  return v.size() == n && std::all_of(v.begin(), v.end(), [fill](char c) { return c == fill; });
}

bool whole(const Traced& t, char fill) {
  if (t.bytes.size() != big()) return false;
  for (char c : t.bytes)
    if (c != fill) return false;
  return true;
}

}  // namespace

TEST(HeapHanded, ABigResultIsReadByTheThreadThatWaitsForIt) {
  mproc::Pool pool(2);
  for (char fill : {'a', 'b', 'c'}) {
    g_decoded_on.store({});
    // Long enough that the caller sleeps (its spin is 100 us) before the result comes.
    Traced t = pool.apply(big_after, std::tuple{300, fill});
    EXPECT_TRUE(whole(t, fill));
    EXPECT_EQ(g_decoded_on.load(), std::this_thread::get_id()) << "apply's result was read on another thread";
  }
  auto r = pool.apply_async(big_after, std::tuple{300, 'd'});
  EXPECT_TRUE(whole(r.get(), 'd'));
  EXPECT_EQ(g_decoded_on.load(), std::this_thread::get_id()) << "get()'s result was read on another thread";
}

TEST(HeapHanded, AWaiterThatLeftLeavesTheResultToTheResultThread) {
  mproc::Pool pool(2);
  auto r = pool.apply_async(big_after, std::tuple{300, 'e'});
  EXPECT_FALSE(r.wait(50ms));
  // Nobody waits when it comes: the result thread reads it, and it becomes ready by itself.
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!r.ready() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(r.ready());
  EXPECT_NE(g_decoded_on.load(), std::this_thread::get_id());
  EXPECT_TRUE(whole(r.get(), 'e'));
}

TEST(HeapHanded, WaitersThatTimeOutAroundTheResultNeverLoseIt) {
  mproc::Pool pool(2);
  // Each waiter leaves at a different moment around the result's arrival: before it, while it
  // is handed over, after it. The result is read once, whoever reads it.
  for (int i = 0; i < 20; ++i) {
    auto r = pool.apply_async(big_after, std::tuple{20, static_cast<char>('a' + i)});
    while (!r.wait(std::chrono::microseconds(200 + 150 * i))) {
    }
    EXPECT_TRUE(whole(r.get(), static_cast<char>('a' + i))) << "call " << i;
  }
}

TEST(HeapHanded, ThreeThreadsWaitingForOneResultAllGetIt) {
  mproc::Pool pool(2);
  for (int round = 0; round < 5; ++round) {
    auto r = pool.apply_async(big_after, std::tuple{100, 'f'});
    std::atomic<int> whole_ones{0};
    std::vector<std::thread> waiters;
    for (int w = 0; w < 3; ++w)
      waiters.emplace_back([&] {
        if (whole(r.get(), 'f')) whole_ones.fetch_add(1);
      });
    for (auto& t : waiters) t.join();
    EXPECT_EQ(whole_ones.load(), 3) << "round " << round;
  }
}

TEST(HeapHanded, CallersOnManyThreadsReadTheirBigResultsAtOnce) {
  mproc::Pool pool(2);
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&, c] {
      for (int i = 0; i < 10; ++i) {
        const char fill = static_cast<char>('A' + c * 10 + i);
        if (!whole(pool.apply(big_after, std::tuple{2 + i % 3, fill}), fill)) wrong.fetch_add(1);
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(HeapHanded, ADoneCallbackThatEndsThePoolRunsOnTheReaderWithoutAHang) {
  mproc::Pool pool(2);
  auto f = pool.submit(big_after, 200, 'g');
  std::atomic<bool> joined{false};
  std::thread::id ran_on;
  f.add_done_callback([&](const auto&) {
    ran_on = std::this_thread::get_id();
    pool.close();
    pool.join();  // waits for the pool's threads, the result thread among them
    joined = true;
  });
  EXPECT_TRUE(whole(f.result(), 'g'));
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_TRUE(joined.load());
}

TEST(HeapHanded, APoolTerminatedAroundABigResultsReadGivesTheValueOrAnError) {
  // terminate() lands before the result (the task fails), while a caller reads it, or after.
  int values = 0, errors = 0;
  for (int delay_ms = 40; delay_ms <= 70; delay_ms += 2) {
    mproc::Pool pool(2);
    std::atomic<int> outcome{0};  // 1: the value, whole; 2: an exception
    std::thread caller([&] {
      try {
        outcome = whole(pool.apply(big_after, std::tuple{50, 'h'}), 'h') ? 1 : 3;
      } catch (const std::exception&) {
        outcome = 2;
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    pool.terminate();
    caller.join();
    ASSERT_NE(outcome.load(), 3) << "a torn value at " << delay_ms << " ms";
    ASSERT_NE(outcome.load(), 0);
    (outcome.load() == 1 ? values : errors) += 1;
  }
  std::printf("values %d, errors %d\n", values, errors);
}

TEST(HeapHanded, WorkersKilledWhileOtherCallersReadBigResults) {
  mproc::Pool pool(2);
  std::atomic<int> wrong{0}, lost{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c)
    callers.emplace_back([&, c] {
      for (int i = 0; i < 20; ++i) {
        const char fill = static_cast<char>('a' + i);
        const bool die = (c * 20 + i) % 7 == 3;
        try {
          if (!whole(pool.apply(big_or_die, std::tuple{1 + i % 3, fill, die}), fill) || die) wrong.fetch_add(1);
        } catch (const mproc::WorkerLost&) {
          if (!die) wrong.fetch_add(1);
          lost.fetch_add(1);
        }
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(lost.load(), 9);  // (c * 20 + i) % 7 == 3 for 9 of the 60
}

TEST(HeapHanded, TheMemoryForABigResultIsReadiedWhileTheCallerWaits) {
  mproc::Pool pool(1);
  std::ptrdiff_t grew = 0;
  // The first: nothing readied (no big one came before); read on this thread, which notes its size.
  EXPECT_TRUE(whole(apply_noting_growth(pool, 600, kBytes, 'a', grew), kBytes, 'a'));
  EXPECT_LT(grew, static_cast<std::ptrdiff_t>(kBytes / 2)) << "memory readied before any big result came";
  // The next: while the worker sleeps, the caller has committed as much for it.
  for (char fill : {'b', 'c'}) {
    EXPECT_TRUE(whole(apply_noting_growth(pool, 600, kBytes, fill, grew), kBytes, fill));
    EXPECT_GE(grew, static_cast<std::ptrdiff_t>(kBytes * 3 / 4)) << "no memory readied for result " << fill;
  }
  // A bigger one than readied is read into fresh memory, whole.
  EXPECT_TRUE(whole(pool.apply(bytes_after, std::tuple{300, kBytes + 4096, 'd'}), kBytes + 4096, 'd'));
}

TEST(HeapHanded, MemoryReadiedForAResultThatTurnsOutSmallIsDroppedAndNotReadiedAgain) {
  mproc::Pool pool(1);
  std::ptrdiff_t grew = 0;
  EXPECT_TRUE(whole(pool.apply(bytes_after, std::tuple{300, kBytes, 'a'}), kBytes, 'a'));
  const std::size_t before = anon_bytes();
  // Readied, as the last was big; the result is small, and what was readied goes with the wait.
  EXPECT_TRUE(whole(apply_noting_growth(pool, 600, 10, 'b', grew), 10, 'b'));
  EXPECT_GE(grew, static_cast<std::ptrdiff_t>(kBytes * 3 / 4));
  if (kFreesAreSeen) {
    EXPECT_LT(anon_bytes(), before + kBytes / 2) << "the memory readied was kept";
  }
  // The last was small: nothing is readied now.
  EXPECT_TRUE(whole(apply_noting_growth(pool, 600, 10, 'c', grew), 10, 'c'));
  EXPECT_LT(grew, static_cast<std::ptrdiff_t>(kBytes / 2)) << "memory readied after a small result";
}
