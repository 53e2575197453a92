// The shared heap's free blocks merge: a heap of 256 MiB (MPROC_HEAP_SIZE, set before its first
// use) cut into small blocks until exhausted and freed hands out a block of half its size, and
// again after blocks of mixed sizes were freed in a scattered order.
#include <stdlib.h>

#include <cstddef>
#include <cstring>
#include <memory_resource>
#include <new>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/shared_heap.hpp"

namespace {

// Before main, so before the heap is mapped: its size is read then.
const int kSmallHeap = ::setenv("MPROC_HEAP_SIZE", "268435456", 1);

std::vector<std::pair<void*, std::size_t>> fill_heap(std::size_t (*size_of)(std::size_t)) {
  std::vector<std::pair<void*, std::size_t>> taken;
  try {
    for (std::size_t i = 0;; ++i) {
      std::size_t size = size_of(i);
      taken.emplace_back(mproc::shared_resource()->allocate(size), size);
    }
  } catch (const std::bad_alloc&) {
  }
  return taken;
}

}  // namespace

TEST(HeapMerge, AHeapCutIntoSmallBlocksAndFreedHandsOutALargeOne) {
  ASSERT_EQ(kSmallHeap, 0);
  std::pmr::memory_resource* heap = mproc::shared_resource();
  ASSERT_LE(mproc::heap_stats().reserved, std::size_t{256} << 20);
  auto taken = fill_heap([](std::size_t) { return std::size_t{1} << 20; });
  ASSERT_GT(taken.size(), 100u);
  for (auto [p, n] : taken) heap->deallocate(p, n);
  void* big = heap->allocate(std::size_t{128} << 20);
  std::memset(big, 1, std::size_t{128} << 20);
  heap->deallocate(big, std::size_t{128} << 20);
}

TEST(HeapMerge, MixedSizesFreedInAScatteredOrderMergeToo) {
  std::pmr::memory_resource* heap = mproc::shared_resource();
  auto taken = fill_heap([](std::size_t i) { return (std::size_t{96} << 10) << (i * 7 % 5); });
  ASSERT_GT(taken.size(), 50u);
  for (std::size_t i = 0; i < taken.size(); i += 2) heap->deallocate(taken[i].first, taken[i].second);
  for (std::size_t i = 1; i < taken.size(); i += 2) heap->deallocate(taken[i].first, taken[i].second);
  // Half the heap in one block, twice over in turn; then small blocks again.
  for (int round = 0; round < 2; ++round) {
    void* big = heap->allocate(std::size_t{128} << 20);
    heap->deallocate(big, std::size_t{128} << 20);
  }
  std::pmr::vector<int> small({1, 2, 3}, heap);
  EXPECT_EQ(small[2], 3);
  EXPECT_LT(mproc::heap_stats().in_use, std::size_t{64} << 10);
}
