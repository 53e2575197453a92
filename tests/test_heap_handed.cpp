// A big result (a frame in the shared heap) is read by the thread that waits for it, not by the
// pool's result thread (collect.hpp, JobBase::hand_to_waiter): its fresh pages are committed on the
// caller's CPU, and two callers' results are read at once. Whatever the timing, the result is read
// once and whole: by the waiter, by the last of several waiters, or by the result thread when the
// waiter left; a pool ended meanwhile waits for the read; a done callback that ends the pool runs
// without a hang.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <stdexcept>
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
