// A process Pool reading map's items in place: items in an mproc::Array, made before or after the
// pool (it lives in the shared heap), are not copied to the workers (they share the memory);
// anything else is. And results sent
// densely (their bytes back to back) unless an item fails.
#include <array>
#include <cstdint>
#include <numeric>
#include <optional>
#include <span>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "leak_check.hpp"
#include "mproc/mproc.hpp"

namespace {

using Row = std::array<int, 6>;

int row_sum(const Row& r) { return std::accumulate(r.begin(), r.end(), 0); }
// Where the worker found the item: the Array's own address when read in place.
std::uintptr_t address_of(const Row& r) { return reinterpret_cast<std::uintptr_t>(&r); }
int throw_on_seven(const Row& r) {
  if (r[0] == 7) throw std::out_of_range("row 7");
  return r[0];
}
int product(int a, int b) { return a * b; }
void nothing(const Row&) {}
int fail_on_three(int x) {
  if (x == 3) throw std::invalid_argument("three");
  return x * 10;
}

void fill(mproc::Array<Row>& rows) {
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < 6; ++j) rows[i][j] = static_cast<int>(i * 6 + j) % 11;
}

std::vector<int> serial_sums(std::span<const Row> rows) {
  std::vector<int> out;
  for (const Row& r : rows) out.push_back(row_sum(r));
  return out;
}

std::vector<std::uintptr_t> addresses(std::span<const Row> rows) {
  std::vector<std::uintptr_t> out;
  for (const Row& r : rows) out.push_back(reinterpret_cast<std::uintptr_t>(&r));
  return out;
}

}  // namespace

TEST(PoolInPlace, ArrayMadeBeforeThePoolIsReadWhereItIs) {
  mproc::Array<Row> rows(1000);
  fill(rows);
  mproc::Pool pool(2);
  EXPECT_TRUE(pool.backend().shares(rows.begin(), rows.size() * sizeof(Row)));
  EXPECT_EQ(pool.map(address_of, rows, 64), addresses(rows.span()));
  EXPECT_EQ(pool.map(row_sum, rows), serial_sums(rows.span()));
  // A part of it, as a span, too.
  auto part = rows.span().subspan(10, 100);
  EXPECT_EQ(pool.map(address_of, part), addresses(part));
  EXPECT_EQ(pool.map_async(row_sum, part).get(), serial_sums(part));
}

TEST(PoolInPlace, ArrayMadeAfterThePoolIsReadWhereItIsToo) {
  mproc::Pool pool(2);
  mproc::Array<Row> rows(500);
  fill(rows);
  EXPECT_TRUE(pool.backend().shares(rows.begin(), rows.size() * sizeof(Row)));
  const mproc::HeapStats before = mproc::heap_stats();
  EXPECT_EQ(pool.map(address_of, rows), addresses(rows.span()));
  EXPECT_EQ(pool.map(row_sum, rows), serial_sums(rows.span()));
  EXPECT_EQ(mproc::heap_stats().maps_copied, before.maps_copied);
}

// The heap is one memory for every process: an Array made where a freed one was is read with
// its own rows, never the old ones.
TEST(PoolInPlace, ANewArrayWhereAFreedOneWasIsReadWithItsOwnRows) {
  std::optional<mproc::Array<Row>> before(std::in_place, 300);
  const Row* old_address = before->begin();
  mproc::Pool pool(2);
  before.reset();
  mproc::Array<Row> after(300);
  fill(after);
  if (after.begin() != old_address) GTEST_LOG_(INFO) << "the new Array did not land at the old address";
  EXPECT_TRUE(pool.backend().shares(after.begin(), after.size() * sizeof(Row)));
  EXPECT_EQ(pool.map(row_sum, after), serial_sums(after.span()));
}

TEST(PoolInPlace, OtherMemoryIsNeverShared) {
  mproc::Array<Row> rows(10);
  mproc::Pool pool(1);
  std::vector<Row> heap(10);
  EXPECT_FALSE(pool.backend().shares(heap.data(), heap.size() * sizeof(Row)));
  // The Array lies in the shared heap; running past the heap's end is not shared.
  EXPECT_TRUE(pool.backend().shares(rows.begin(), rows.size() * sizeof(Row)));
  EXPECT_FALSE(pool.backend().shares(rows.begin(), mproc::heap_stats().reserved + 1));
}

TEST(PoolInPlace, StarmapAndVoidFunctionsReadInPlaceToo) {
  mproc::Array<std::array<int, 2>> pairs(200);
  for (std::size_t i = 0; i < pairs.size(); ++i) pairs[i] = {static_cast<int>(i), 3};
  mproc::Array<Row> rows(50);
  mproc::Pool pool(2);
  std::vector<int> expected;
  for (int i = 0; i < 200; ++i) expected.push_back(i * 3);
  EXPECT_EQ(pool.starmap(product, pairs), expected);
  EXPECT_EQ(pool.starmap_async(product, pairs, 7).get(), expected);
  EXPECT_EQ(pool.map(nothing, rows).size(), 50u);
}

TEST(PoolInPlace, ATaskThatThrowsFailsTheMapWithItsOwnType) {
  mproc::Array<Row> rows(40);
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i][0] = static_cast<int>(i);
  mproc::Pool pool(2);
  EXPECT_THROW(pool.map(throw_on_seven, rows, 10), std::out_of_range);
  std::exception_ptr seen;
  auto r = pool.map_async(throw_on_seven, rows, 10, {}, [&](std::exception_ptr e) { seen = e; });
  r.wait();
  EXPECT_FALSE(r.successful());
  EXPECT_THROW(r.get(), std::out_of_range);
  EXPECT_TRUE(seen);
  rows[7][0] = 70;  // the pool goes on
  auto out = pool.map(throw_on_seven, rows, 10);
  EXPECT_EQ(out[7], 70);
  EXPECT_EQ(out[39], 39);
}

// A chunk whose results were being sent densely switches form when an item fails: the items
// before and after it keep their values (imap shows each item's own outcome).
TEST(PoolInPlace, AFailedItemInADenseChunkKeepsItsNeighboursValues) {
  mproc::Pool pool(1);
  std::vector<int> xs{0, 1, 2, 3, 4, 5, 6, 7};
  auto results = pool.imap(fail_on_three, xs, 8);
  for (int i = 0; i < 8; ++i) {
    if (i == 3)
      EXPECT_THROW(results.next(), std::invalid_argument);
    else
      EXPECT_EQ(results.next(), std::optional<int>(i * 10));
  }
  EXPECT_EQ(results.next(), std::nullopt);
}
