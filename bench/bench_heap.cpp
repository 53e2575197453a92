// The article's map with its rows on the shared heap (issue 16, "How fast"): 300000 rows in a
// std::pmr::vector<std::pmr::vector<int>> made after the pool, mapped on a started Pool(2) and
// read in place, next to the serial loop over the same rows; and the same with std::array rows
// in a pmr vector. The ratio to quote is BM_HeapArticleSerial / BM_HeapArticleMap of one run.
#include <algorithm>
#include <array>
#include <memory_resource>
#include <vector>

#include <benchmark/benchmark.h>

#include "article_workload.hpp"

#include "mproc/mproc.hpp"

namespace {

using Row = std::pmr::vector<int>;
using FixedRow = std::array<int, 6>;

int howmany_within_range(const Row& row) {
  return static_cast<int>(std::count_if(row.begin(), row.end(), [](int v) { return v >= 4 && v <= 8; }));
}
int howmany_within_range_fixed(const FixedRow& row) {
  return static_cast<int>(std::count_if(row.begin(), row.end(), [](int v) { return v >= 4 && v <= 8; }));
}

mproc::Pool& started_pool() {
  static mproc::Pool pool(2);
  return pool;
}

// Made after the pool, as a program that ports the article would.
const std::pmr::vector<Row>& heap_rows() {
  static const std::pmr::vector<Row> rows = [] {
    (void)started_pool();
    std::pmr::vector<Row> out(mproc::shared_resource());
    out.reserve(bench::article_rows().size());
    for (const auto& r : bench::article_rows()) out.emplace_back(r.begin(), r.end());
    return out;
  }();
  return rows;
}

const std::pmr::vector<FixedRow>& heap_fixed_rows() {
  static const std::pmr::vector<FixedRow> rows = [] {
    (void)started_pool();
    std::pmr::vector<FixedRow> out(mproc::shared_resource());
    out.reserve(bench::article_rows().size());
    for (const auto& r : bench::article_rows()) std::copy(r.begin(), r.end(), out.emplace_back().begin());
    return out;
  }();
  return rows;
}

void BM_HeapArticleMap(benchmark::State& state) {
  auto& pool = started_pool();
  const auto& rows = heap_rows();
  auto copied = mproc::heap_stats().maps_copied;
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(howmany_within_range, rows));
  if (mproc::heap_stats().maps_copied != copied) state.SkipWithError("the rows were copied, not read in place");
}
BENCHMARK(BM_HeapArticleMap)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_HeapArticleSerial(benchmark::State& state) {
  const auto& rows = heap_rows();
  for (auto _ : state) benchmark::DoNotOptimize(bench::serial_counts(rows, howmany_within_range));
}
BENCHMARK(BM_HeapArticleSerial)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_HeapArticleMapFixed(benchmark::State& state) {
  auto& pool = started_pool();
  const auto& rows = heap_fixed_rows();
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(howmany_within_range_fixed, rows));
}
BENCHMARK(BM_HeapArticleMapFixed)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_HeapArticleSerialFixed(benchmark::State& state) {
  const auto& rows = heap_fixed_rows();
  for (auto _ : state) benchmark::DoNotOptimize(bench::serial_counts(rows, howmany_within_range_fixed));
}
BENCHMARK(BM_HeapArticleSerialFixed)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
