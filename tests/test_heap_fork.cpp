// The shared heap across processes: what the parent allocates a Process child reads; what a pool
// worker allocates the parent reads; a block freed in another process than the one that made it.
#include <cstdint>
#include <memory_resource>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "leak_check.hpp"
#include "mproc/mproc.hpp"

namespace {

using Rows = std::pmr::vector<std::pmr::vector<int>>;

// Made in a worker, in the heap: the parent reads it by the address returned.
std::uintptr_t make_rows(int n) {
  auto* rows = static_cast<Rows*>(mproc::shared_resource()->allocate(sizeof(Rows), alignof(Rows)));
  ::new (rows) Rows(mproc::shared_resource());
  for (int i = 0; i < n; ++i) rows->emplace_back(std::pmr::vector<int>{i, i * 2, i * 3});
  return reinterpret_cast<std::uintptr_t>(rows);
}

// Frees in a worker what the parent made.
int free_rows(std::uintptr_t address) {
  auto* rows = reinterpret_cast<Rows*>(address);
  int sum = 0;
  for (const auto& r : *rows) sum += std::accumulate(r.begin(), r.end(), 0);
  rows->~Rows();
  mproc::shared_resource()->deallocate(rows, sizeof(Rows), alignof(Rows));
  return sum;
}

}  // namespace

TEST(HeapFork, ParentAllocatesAProcessChildReadsAndGrowsIt) {
  Rows rows(mproc::shared_resource());
  for (int i = 0; i < 1000; ++i) rows.emplace_back(std::pmr::vector<int>{i, i + 1});
  mproc::Value<int> seen(0);
  mproc::Process child([&rows, seen]() mutable {
    int sum = 0;
    for (const auto& r : rows) sum += r[0] + r[1];
    seen.set(sum);
    rows[5].push_back(42);  // grown in the child: new heap memory the parent must see
  });
  child.start();
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_EQ(seen.get(), 1000 * 999 + 1000);
  ASSERT_EQ(rows[5].size(), 3u);
  EXPECT_EQ(rows[5][2], 42);
}

TEST(HeapFork, AWorkerAllocatesTheParentReadsAndFreesIt) {
  mproc::Pool pool(2);
  auto in_use = mproc::heap_stats().in_use;
  auto address = pool.apply(make_rows, std::tuple{5000});
  EXPECT_GT(mproc::heap_stats().in_use, in_use);
  auto* rows = reinterpret_cast<Rows*>(address);
  ASSERT_EQ(rows->size(), 5000u);
  for (int i = 0; i < 5000; ++i) ASSERT_EQ((*rows)[static_cast<std::size_t>(i)][2], i * 3);
  rows->~Rows();
  mproc::shared_resource()->deallocate(rows, sizeof(Rows), alignof(Rows));
  EXPECT_EQ(mproc::heap_stats().in_use, in_use);
}

TEST(HeapFork, TheParentAllocatesAfterThePoolAWorkerFreesIt) {
  mproc::Pool pool(2);
  auto in_use = mproc::heap_stats().in_use;
  auto* rows = static_cast<Rows*>(mproc::shared_resource()->allocate(sizeof(Rows), alignof(Rows)));
  ::new (rows) Rows(mproc::shared_resource());
  for (int i = 0; i < 100; ++i) rows->emplace_back(std::pmr::vector<int>{1, 2});
  EXPECT_EQ(pool.apply(free_rows, std::tuple{reinterpret_cast<std::uintptr_t>(rows)}), 300);
  EXPECT_EQ(mproc::heap_stats().in_use, in_use);
  // The freed blocks are handed out again here.
  std::pmr::vector<int> again({7}, mproc::shared_resource());
  EXPECT_EQ(again[0], 7);
}
