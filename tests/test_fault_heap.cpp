// The shared heap when processes die: a child SIGKILLed while it allocates and frees in a loop
// (perhaps holding the heap's lock) leaves the heap usable and nothing it handed out corrupt; a
// pool worker that exhausts the heap gets std::bad_alloc, and the pool goes on; a pool worker
// SIGKILLed while it allocates loses its task only, while the other worker allocates on.
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <new>
#include <thread>
#include <vector>

#include "fault_check.hpp"
#include "mproc/shared_heap.hpp"

namespace {

// Allocates and frees blocks of many sizes forever, checking each before it frees it.
[[noreturn]] void churn() {
  std::pmr::memory_resource* heap = mproc::shared_resource();
  std::vector<std::pair<unsigned char*, std::size_t>> held;
  for (unsigned i = 0;; ++i) {
    std::size_t size = std::size_t{16} << (i % 14);
    auto* p = static_cast<unsigned char*>(heap->allocate(size));
    std::memset(p, 0xab, size);
    held.emplace_back(p, size);
    if (held.size() > 64) {
      auto [q, n] = held.front();
      for (std::size_t j = 0; j < n; ++j)
        if (q[j] != 0xab) std::abort();
      heap->deallocate(q, n);
      held.erase(held.begin());
    }
  }
}

// As churn, for ms milliseconds in a pool worker, having stored its pid at pid_at (an
// std::atomic<int> in the heap); returns how many blocks it allocated.
long churn_for(int ms, std::uintptr_t pid_at) {
  if (pid_at) reinterpret_cast<std::atomic<int>*>(pid_at)->store(static_cast<int>(::getpid()));
  std::pmr::memory_resource* heap = mproc::shared_resource();
  std::vector<std::pair<unsigned char*, std::size_t>> held;
  long made = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (unsigned i = 0; std::chrono::steady_clock::now() < until; ++i, ++made) {
    std::size_t size = std::size_t{16} << (i % 14);
    auto* p = static_cast<unsigned char*>(heap->allocate(size));
    std::memset(p, 0xcd, size);
    held.emplace_back(p, size);
    if (held.size() > 64) {
      auto [q, n] = held.front();
      for (std::size_t j = 0; j < n; ++j)
        if (q[j] != 0xcd) std::abort();
      heap->deallocate(q, n);
      held.erase(held.begin());
    }
  }
  for (auto [q, n] : held) heap->deallocate(q, n);
  return made;
}

int exhaust(int) {
  std::vector<void*> taken;
  try {
    for (;;) taken.push_back(mproc::shared_resource()->allocate(std::size_t{1} << 30));
  } catch (...) {
    for (void* p : taken) mproc::shared_resource()->deallocate(p, std::size_t{1} << 30);
    throw;
  }
}

}  // namespace

TEST(FaultHeap, AChildKilledWhileAllocatingCorruptsNothing) {
  std::pmr::memory_resource* heap = mproc::shared_resource();
  // Blocks the parent holds throughout, with a pattern no other process may overwrite.
  std::vector<std::pair<unsigned char*, std::size_t>> mine;
  for (int round = 0; round < 6; ++round) {
    mproc::Process a(churn), b(churn);
    a.start();
    b.start();
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(60 + 17 * round);
    while (std::chrono::steady_clock::now() < until) {
      std::size_t size = std::size_t{24} << (mine.size() % 12);
      auto* p = static_cast<unsigned char*>(heap->allocate(size));
      std::memset(p, static_cast<int>(mine.size() & 0x7f), size);
      mine.emplace_back(p, size);
    }
    a.kill();
    a.join();
    EXPECT_EQ(a.exitcode(), -SIGKILL);
    // b goes on allocating after a died, perhaps holding the lock.
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_TRUE(b.is_alive()) << "the other child stopped";
    b.kill();
    b.join();
    EXPECT_EQ(b.exitcode(), -SIGKILL);
  }
  for (std::size_t i = 0; i < mine.size(); ++i) {
    for (std::size_t j = 0; j < mine[i].second; ++j)
      ASSERT_EQ(mine[i].first[j], static_cast<unsigned char>(i & 0x7f)) << "block " << i << " corrupt";
    heap->deallocate(mine[i].first, mine[i].second);
  }
  std::pmr::vector<std::pmr::vector<int>> rows(heap);
  for (int i = 0; i < 10000; ++i) rows.emplace_back(std::pmr::vector<int>{i});
  EXPECT_EQ(rows[9999][0], 9999);
}

TEST(FaultHeap, AWorkerThatExhaustsTheHeapGetsBadAllocAndThePoolGoesOn) {
  mproc::Pool pool(2);
  EXPECT_THROW((void)pool.apply(exhaust, std::tuple{0}), std::bad_alloc);
  mproc::test::expect_full_pool_works(pool, 2);
  std::pmr::vector<int> after({1, 2, 3}, mproc::shared_resource());
  EXPECT_EQ(after[1], 2);
}

TEST(FaultHeap, AWorkerKilledWhileAllocatingLosesItsTaskTheOtherGoesOn) {
  mproc::Pool pool(2);
  std::pmr::memory_resource* heap = mproc::shared_resource();
  std::pmr::vector<int> mine(100000, 7, heap);
  auto* pids = static_cast<std::atomic<int>*>(heap->allocate(2 * sizeof(std::atomic<int>)));
  for (int round = 0; round < 4; ++round) {
    pids[0] = pids[1] = 0;
    auto a = pool.apply_async(churn_for, std::tuple{400, reinterpret_cast<std::uintptr_t>(&pids[0])});
    auto b = pool.apply_async(churn_for, std::tuple{400, reinterpret_cast<std::uintptr_t>(&pids[1])});
    // Both run (on the two workers), allocating; one is killed mid-way.
    while (pids[0] == 0 || pids[1] == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(30 + 23 * round));
    const int victim = pids[round % 2];
    ASSERT_NE(victim, pids[1 - round % 2]) << "both tasks ran on one worker";
    ::kill(victim, SIGKILL);
    // One task lost with its worker, the other allocated on to its end.
    int lost = 0;
    long made = 0;
    for (auto* r : {&a, &b}) {
      try {
        made += r->get(std::chrono::seconds(10));
      } catch (const mproc::WorkerLost& e) {
        ++lost;
        EXPECT_EQ(e.signal(), SIGKILL);
      }
    }
    EXPECT_EQ(lost, 1) << "round " << round;
    EXPECT_GT(made, 0) << "the other worker stopped allocating";
  }
  EXPECT_EQ(std::count(mine.begin(), mine.end(), 7), 100000) << "a block the parent holds was overwritten";
  heap->deallocate(pids, 2 * sizeof(std::atomic<int>));
  mproc::test::expect_full_pool_works(pool, 2);
  EXPECT_GT(pool.apply(churn_for, std::tuple{50, std::uintptr_t{0}}), 0);
}
