// A process Pool reading items that lie in the shared heap in place: pmr rows made after the
// pool cross as their addresses only (HeapStats::maps_in_place says so), with the same results
// as the serial loop; items that are not all in the heap are copied (maps_copied). map_into
// into memory in the heap has the workers write each result there themselves (results_placed);
// into other memory, results are copied back; a wrong size, a failed item and ThreadPool too. A
// map of many rows in the heap has its results written in a block of the heap likewise.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
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

// Tasks of the map below that started and that ended, counted in the heap (made before the
// pool forks, so its workers have the same pointer).
struct TaskCounts {
  std::atomic<int> started{0}, ended{0};
};
TaskCounts* g_counts = nullptr;

// An empty row fails at once; any other is read after 300 ms.
int fail_at_once_or_read_late(const Row& r) {
  g_counts->started.fetch_add(1);
  if (r.empty()) throw std::runtime_error("an empty row");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const int n = static_cast<int>(r.size());
  g_counts->ended.fetch_add(1);
  return n;
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

// --- results written in place (map_into) -----------------------------------------------------

namespace {

int throws_at_13(const Row& r) {
  if (r.size() == 13) throw std::out_of_range("row of 13");
  return static_cast<int>(r.size());
}
std::string name_of(int i) { return std::to_string(i); }
std::uint64_t mul(std::uint32_t a, std::uint32_t b) { return std::uint64_t{a} * b; }
// Where the worker that runs it writes: the parent's out, not a copy sent back.
std::uintptr_t worker_pid(const Row&) { return static_cast<std::uintptr_t>(::getpid()); }

}  // namespace

TEST(HeapInPlace, MapIntoHeapMemoryIsWrittenByTheWorkersThemselves) {
  mproc::Pool pool(2);
  auto rows = make_rows(30000);
  std::vector<int> serial;
  for (const auto& r : rows) serial.push_back(count_row(r));
  std::pmr::vector<int> out(rows.size(), -1, mproc::shared_resource());
  auto before = mproc::heap_stats();
  pool.map_into(count_row, rows, out);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), serial.begin(), serial.end()));
  std::fill(out.begin(), out.end(), -1);
  pool.map_into(count_row, rows, out, 7);  // many small chunks, each to its place
  EXPECT_TRUE(std::equal(out.begin(), out.end(), serial.begin(), serial.end()));
  auto after = mproc::heap_stats();
  EXPECT_EQ(after.results_placed, before.results_placed + 2);
  EXPECT_EQ(after.maps_in_place, before.maps_in_place + 2);
  // Each result came from a worker process, and both wrote.
  std::pmr::vector<std::uintptr_t> pids(rows.size(), 0, mproc::shared_resource());
  pool.map_into(worker_pid, rows, pids, 100);
  for (auto pid : pids) ASSERT_NE(pid, static_cast<std::uintptr_t>(::getpid()));
}

TEST(HeapInPlace, MapIntoOrdinaryMemoryGetsTheResultsCopiedBack) {
  mproc::Pool pool(2);
  auto rows = make_rows(5000);
  std::vector<int> out(rows.size(), -1);
  auto before = mproc::heap_stats();
  pool.map_into(count_row, rows, out);
  for (std::size_t i = 0; i < rows.size(); ++i) ASSERT_EQ(out[i], count_row(rows[i])) << i;
  EXPECT_EQ(mproc::heap_stats().results_placed, before.results_placed);
  // Results that are not bytes, into ordinary memory; and starmap_into into the heap.
  std::vector<std::string> names(10);
  pool.map_into(name_of, std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, names);
  EXPECT_EQ(names[7], "7");
  std::vector<std::pair<std::uint32_t, std::uint32_t>> pairs;
  for (std::uint32_t i = 0; i < 1000; ++i) pairs.emplace_back(i, 100000);
  std::pmr::vector<std::uint64_t> products(pairs.size(), mproc::shared_resource());
  pool.starmap_into(mul, pairs, products);
  EXPECT_EQ(products[999], 99'900'000u);
}

TEST(HeapInPlace, MapIntoRefusesAnOutOfTheWrongSizeBeforeAnyTaskRuns) {
  mproc::Pool pool(2);
  auto rows = make_rows(10);
  std::pmr::vector<int> out(9, -1, mproc::shared_resource());
  EXPECT_THROW(pool.map_into(count_row, rows, out), std::invalid_argument);
  EXPECT_EQ(std::count(out.begin(), out.end(), -1), 9);
  mproc::ThreadPool threads(2);
  EXPECT_THROW(threads.map_into(count_row, rows, out), std::invalid_argument);
}

TEST(HeapInPlace, MapIntoAFailedItemKeepsItsNeighboursValuesAndThrowsItsType) {
  mproc::Pool pool(2);
  std::pmr::vector<Row> rows(mproc::shared_resource());
  for (int i = 0; i < 40; ++i) rows.emplace_back(static_cast<std::size_t>(i == 25 ? 13 : 3));
  std::pmr::vector<int> out(rows.size(), -1, mproc::shared_resource());
  EXPECT_THROW(pool.map_into(throws_at_13, rows, out, 40), std::out_of_range);
  for (int i = 0; i < 40; ++i) {
    if (i != 25) {
      EXPECT_EQ(out[static_cast<std::size_t>(i)], 3) << i;
    }
  }
  std::ranges::fill(out, -1);
  pool.map_into(count_row, make_rows(40), out);  // the pool goes on
  EXPECT_EQ(std::ranges::count(out, -1), 0);
}

// A map of many rows in the heap has its results written there by the workers, then copied once
// into the vector it returns (results_placed counts it); the block is the heap's again after.
TEST(HeapInPlace, AMapOfManyRowsInTheHeapHasTheWorkersWriteItsResults) {
  mproc::Pool pool(2);
  auto rows = make_rows(30000);  // 120 KB of results: enough to be written in the heap
  std::vector<int> serial;
  for (const auto& r : rows) serial.push_back(count_row(r));
  auto before = mproc::heap_stats();
  EXPECT_EQ(pool.map(count_row, rows), serial);
  EXPECT_EQ(pool.map(count_row, rows, 7), serial);  // many small chunks, each to its place
  std::vector<int> called_back;
  EXPECT_EQ(pool.map_async(count_row, rows, 0, [&](const std::vector<int>& v) { called_back = v; }).get(), serial);
  auto after = mproc::heap_stats();
  EXPECT_EQ(after.results_placed, before.results_placed + 3);
  EXPECT_EQ(called_back, serial);
  // Each block goes with its job, which the pool's thread may hold a moment after the call returns.
  for (int i = 0; i < 1000 && mproc::heap_stats().in_use != before.in_use; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(mproc::heap_stats().in_use, before.in_use);
  // A few results cross as before.
  EXPECT_EQ(pool.map(count_row, std::span<const Row>(rows).first(100)),
            std::vector<int>(serial.begin(), serial.begin() + 100));
  EXPECT_EQ(mproc::heap_stats().results_placed, after.results_placed);
}

TEST(HeapInPlace, AMapWhoseResultsAreInTheHeapThrowsAFailedItemsType) {
  mproc::Pool pool(2);
  std::pmr::vector<Row> rows(mproc::shared_resource());
  for (int i = 0; i < 40000; ++i) rows.emplace_back(static_cast<std::size_t>(i == 25000 ? 13 : 3));
  auto before = mproc::heap_stats();
  EXPECT_THROW((void)pool.map(throws_at_13, rows), std::out_of_range);
  std::exception_ptr error;
  auto failed = pool.map_async(throws_at_13, rows, 100, {}, [&](std::exception_ptr e) { error = e; });
  EXPECT_THROW((void)failed.get(), std::out_of_range);
  EXPECT_TRUE(error);
  rows[25000].resize(3);
  EXPECT_EQ(pool.map(throws_at_13, rows), std::vector<int>(rows.size(), 3));  // the pool goes on
  EXPECT_EQ(mproc::heap_stats().results_placed, before.results_placed + 3);
}

// A map that fails early leaves before its other items ran, but not while a worker still reads
// the caller's rows where they are: the caller frees them as it unwinds.
TEST(HeapInPlace, AMapThatFailsEarlyWaitsForTheTasksReadingItsRows) {
  std::pmr::memory_resource* heap = mproc::shared_resource();
  g_counts = new (heap->allocate(sizeof(TaskCounts), alignof(TaskCounts))) TaskCounts;
  {
    mproc::Pool pool(2);
    std::pmr::vector<Row> rows(heap);
    rows.emplace_back(std::size_t{6}, 1);  // read late by one worker
    rows.emplace_back();                   // fails at once on the other
    for (int i = 0; i < 20; ++i) rows.emplace_back(std::size_t{6}, 1);
    EXPECT_THROW(pool.map(fail_at_once_or_read_late, rows, 1), std::runtime_error);
    // Every task that started has ended: none reads rows after this.
    EXPECT_EQ(g_counts->ended.load(), g_counts->started.load() - 1);  // less the one that threw
    EXPECT_LT(g_counts->started.load(), 22);                          // the items not started were cancelled
  }
  heap->deallocate(g_counts, sizeof(TaskCounts), alignof(TaskCounts));
  g_counts = nullptr;
}

TEST(HeapInPlace, MapIntoOnAThreadPoolWritesTheSame) {
  mproc::ThreadPool pool(2);
  auto rows = make_rows(2000);
  std::pmr::vector<int> out(rows.size(), -1, mproc::shared_resource());
  pool.map_into(count_row, rows, out);
  for (std::size_t i = 0; i < rows.size(); ++i) ASSERT_EQ(out[i], count_row(rows[i])) << i;
}
