// The shared heap in one process: blocks of every size and alignment, the pmr resource, the
// figures, exhaustion, and what it leaves behind (no fd, nothing in /dev/shm).
#include <sys/stat.h>

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory_resource>
#include <new>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "leak_check.hpp"
#include "mproc/mproc.hpp"

using mproc::test::open_fds;

TEST(Heap, MapsOnFirstUseLeavingNoFdAndNothingInDevShm) {
  auto fds = open_fds();
  auto shm = mproc::test::shm_entries();
  std::pmr::memory_resource* heap = mproc::shared_resource();
  void* p = heap->allocate(100);
  EXPECT_TRUE(mproc::in_shared_heap(p, 100));
  heap->deallocate(p, 100);
  EXPECT_LE(open_fds().size(), fds.size());
  EXPECT_THAT(mproc::test::new_shm_entries(shm), ::testing::IsEmpty());
  EXPECT_GE(mproc::heap_stats().reserved, std::size_t{64} << 20);
}

TEST(Heap, IsOneMemfdOfModeSixHundred) {
  void* p = mproc::shared_resource()->allocate(64);
  auto at = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  bool found = false;
  while (std::getline(maps, line)) {
    std::uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) != 2 || at < lo || at >= hi) continue;
    found = true;
    EXPECT_NE(line.find(" rw-s "), std::string::npos) << line;
    EXPECT_NE(line.find("/memfd:mproc-heap"), std::string::npos) << line;
    // Its file, as this process maps it (root may open it through map_files; others skip).
    std::string file = "/proc/self/map_files/" + line.substr(0, line.find(' '));
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0) {
      EXPECT_EQ(st.st_mode & 0777, 0600u);
    }
  }
  EXPECT_TRUE(found);
  mproc::shared_resource()->deallocate(p, 64);
}

TEST(Heap, TheResourceIsOneObject) {
  EXPECT_EQ(mproc::shared_resource(), mproc::shared_resource());
  EXPECT_TRUE(mproc::shared_resource()->is_equal(*mproc::shared_resource()));
  EXPECT_FALSE(mproc::shared_resource()->is_equal(*std::pmr::new_delete_resource()));
}

TEST(Heap, BlocksOfEverySizeAndAlignmentDoNotOverlap) {
  std::pmr::memory_resource* heap = mproc::shared_resource();
  struct Block {
    std::byte* p;
    std::size_t size;
    std::size_t align;
  };
  std::vector<Block> blocks;
  for (std::size_t size : {1, 7, 16, 17, 100, 128, 129, 1000, 4096, 16384, 16385, 70000, 1 << 20, 3 << 20})
    for (std::size_t align : {1, 8, 16, 32, 64, 4096}) {
      auto* p = static_cast<std::byte*>(heap->allocate(size, align));
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0u) << size << " " << align;
      ASSERT_TRUE(mproc::in_shared_heap(p, size));
      std::memset(p, static_cast<int>(blocks.size() & 0xff), size);
      blocks.push_back({p, size, align});
    }
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    for (std::size_t j = 0; j < blocks[i].size; ++j)
      ASSERT_EQ(blocks[i].p[j], static_cast<std::byte>(i & 0xff)) << "block " << i << " overwritten";
    heap->deallocate(blocks[i].p, blocks[i].size, blocks[i].align);
  }
}

TEST(Heap, FreedBlocksAreReusedAndCounted) {
  std::pmr::memory_resource* heap = mproc::shared_resource();
  auto before = mproc::heap_stats();
  void* a = heap->allocate(48);
  EXPECT_GE(mproc::heap_stats().in_use, before.in_use + 48);
  heap->deallocate(a, 48);
  EXPECT_EQ(mproc::heap_stats().in_use, before.in_use);
  void* b = heap->allocate(48);
  EXPECT_EQ(a, b);
  heap->deallocate(b, 48);
  void* big = heap->allocate(std::size_t{8} << 20);
  EXPECT_GE(mproc::heap_stats().mapped, std::size_t{8} << 20);
  heap->deallocate(big, std::size_t{8} << 20);
  void* again = heap->allocate(std::size_t{8} << 20);
  EXPECT_EQ(big, again);
  heap->deallocate(again, std::size_t{8} << 20);
}

TEST(Heap, NestedPmrVectorsOfThreeHundredThousandRowsAreQuick) {
  auto build = [] {
    auto start = std::chrono::steady_clock::now();
    std::pmr::vector<std::pmr::vector<int>> rows(mproc::shared_resource());
    rows.reserve(300000);
    for (int i = 0; i < 300000; ++i) rows.emplace_back(std::initializer_list<int>{i, 1, 2, 3, 4, 5});
    EXPECT_EQ(rows[299999][0], 299999);
    EXPECT_EQ(rows[12].get_allocator().resource(), mproc::shared_resource());
    EXPECT_TRUE(mproc::in_shared_heap(rows[12].data(), 6 * sizeof(int)));
    return std::chrono::steady_clock::now() - start;
  };
  // The first time, most of the time is the kernel's first touch of 17 MB of fresh pages; the
  // second reuses the freed blocks and measures the allocator (about 0.1 s on a quiet 2-core VM,
  // bounded loosely here for a loaded one).
  auto fresh = build();
  auto reused = build();
  EXPECT_LT(reused, std::chrono::seconds(1));
  std::printf("300000 rows: %.0f ms fresh, %.0f ms reusing freed blocks\n",
              std::chrono::duration<double, std::milli>(fresh).count(),
              std::chrono::duration<double, std::milli>(reused).count());
}

TEST(Heap, ExhaustedThrowsBadAllocAndRecovers) {
  std::pmr::memory_resource* heap = mproc::shared_resource();
  const std::size_t block = std::size_t{1} << 30;  // untouched: costs address space only
  std::vector<void*> taken;
  EXPECT_THROW(
      {
        for (;;) taken.push_back(heap->allocate(block));
      },
      std::bad_alloc);
  EXPECT_FALSE(taken.empty());
  EXPECT_THROW((void)heap->allocate(block), std::bad_alloc);
  for (void* p : taken) heap->deallocate(p, block);
  void* p = heap->allocate(block);  // a freed one
  heap->deallocate(p, block);
  std::pmr::vector<int> small({1, 2, 3}, heap);
  EXPECT_EQ(small[2], 3);
}
