// A process Pool reading items that lie in the shared heap in place: pmr rows made after the
// pool cross as their addresses only (HeapStats::maps_in_place says so), with the same results
// as the serial loop; items that are not all in the heap are copied (maps_copied).
#include <array>
#include <cstdint>
#include <memory_resource>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "leak_check.hpp"
#include "mproc/mproc.hpp"

namespace {

using Row = std::pmr::vector<int>;

int count_row(const Row& r) {
  return static_cast<int>(std::count_if(r.begin(), r.end(), [](int x) { return x >= 4; }));
}
std::uintptr_t address_of(const Row& r) { return reinterpret_cast<std::uintptr_t>(&r); }
int sum_std(const std::vector<int>& r) { return std::accumulate(r.begin(), r.end(), 0); }
std::size_t weigh(const std::pmr::string& name, const Row& r) { return name.size() + r.size(); }
int first_of(const std::array<int, 6>& r) { return r[0]; }

std::pmr::vector<Row> make_rows(std::size_t n) {
  std::pmr::vector<Row> rows(mproc::shared_resource());
  rows.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    rows.emplace_back();
    for (std::size_t j = 0; j < 6 + i % 5; ++j) rows.back().push_back(static_cast<int>((i * 7 + j) % 10));
  }
  return rows;
}

}  // namespace

TEST(HeapInPlace, PmrRowsMadeAfterThePoolAreReadWhereTheyAre) {
  mproc::Pool pool(2);
  auto rows = make_rows(20000);
  std::vector<int> serial;
  for (const auto& r : rows) serial.push_back(count_row(r));
  auto before = mproc::heap_stats();
  EXPECT_EQ(pool.map(count_row, rows), serial);
  EXPECT_EQ(pool.map_async(count_row, rows, 64).get(), serial);
  auto after = mproc::heap_stats();
  EXPECT_EQ(after.maps_in_place, before.maps_in_place + 2);
  EXPECT_EQ(after.maps_copied, before.maps_copied);
  // The workers found each row at its own address.
  auto where = pool.map(address_of, std::span<const Row>(rows).first(500));
  for (std::size_t i = 0; i < where.size(); ++i) ASSERT_EQ(where[i], reinterpret_cast<std::uintptr_t>(&rows[i]));
}

TEST(HeapInPlace, StarmapOverPairsInTheHeap) {
  mproc::Pool pool(2);
  std::pmr::vector<std::pair<std::pmr::string, Row>> items(mproc::shared_resource());
  for (int i = 0; i < 300; ++i)
    items.emplace_back(std::pmr::string(static_cast<std::size_t>(i % 40), 'x'), Row(static_cast<std::size_t>(i % 7)));
  std::vector<std::size_t> serial;
  for (const auto& [name, r] : items) serial.push_back(weigh(name, r));
  auto before = mproc::heap_stats();
  EXPECT_EQ(pool.starmap(weigh, items), serial);
  EXPECT_EQ(mproc::heap_stats().maps_in_place, before.maps_in_place + 1);
}

TEST(HeapInPlace, TriviallyCopyableRowsInTheHeap) {
  mproc::Pool pool(2);
  std::pmr::vector<std::array<int, 6>> rows(mproc::shared_resource());
  for (int i = 0; i < 1000; ++i) rows.push_back({i, 1, 2, 3, 4, 5});
  auto before = mproc::heap_stats();
  auto firsts = pool.map(first_of, rows);
  ASSERT_EQ(firsts.size(), 1000u);
  EXPECT_EQ(firsts[999], 999);
  EXPECT_EQ(mproc::heap_stats().maps_in_place, before.maps_in_place + 1);
}

TEST(HeapInPlace, RowsOutsideTheHeapAreCopiedAndSaySo) {
  mproc::Pool pool(2);
  std::vector<std::vector<int>> rows(100, std::vector<int>{1, 2, 3});
  auto before = mproc::heap_stats();
  auto sums = pool.map(sum_std, rows);
  EXPECT_EQ(sums, std::vector<int>(100, 6));
  // pmr rows on another resource are copied too.
  std::pmr::vector<Row> elsewhere(std::pmr::new_delete_resource());
  elsewhere.push_back(Row({4, 5}));
  EXPECT_EQ(pool.map(count_row, elsewhere), std::vector<int>{2});
  auto after = mproc::heap_stats();
  EXPECT_EQ(after.maps_copied, before.maps_copied + 2);
  EXPECT_EQ(after.maps_in_place, before.maps_in_place);
}

TEST(HeapInPlace, RowsInTheHeapWhoseDataIsElsewhereAreCopiedChunkByChunk) {
  mproc::Pool pool(2);
  // Rows whose own bytes are in the heap, some of them with their data on another resource.
  constexpr std::size_t n = 64;
  auto* raw = static_cast<Row*>(mproc::shared_resource()->allocate(n * sizeof(Row), alignof(Row)));
  for (std::size_t i = 0; i < n; ++i) {
    std::pmr::memory_resource* r = i >= 48 ? std::pmr::new_delete_resource() : mproc::shared_resource();
    ::new (raw + i) Row({4, 5, static_cast<int>(i % 3)}, r);
  }
  std::span<const Row> rows(raw, n);
  std::vector<int> serial;
  for (const auto& r : rows) serial.push_back(count_row(r));
  auto before = mproc::heap_stats();
  EXPECT_EQ(pool.map(count_row, rows, 16), serial);
  auto where = pool.map(address_of, rows, 16);
  for (std::size_t i = 0; i < n; ++i)
    EXPECT_EQ(where[i] == reinterpret_cast<std::uintptr_t>(&rows[i]), i < 48) << "row " << i;
  EXPECT_EQ(mproc::heap_stats().maps_copied, before.maps_copied + 2);
  for (std::size_t i = 0; i < n; ++i) raw[i].~Row();
  mproc::shared_resource()->deallocate(raw, n * sizeof(Row), alignof(Row));
}
