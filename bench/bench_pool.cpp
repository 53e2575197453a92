// The process Pool's four figures (issue: "How fast"): a synchronous apply round trip, 300000
// apply_async then gathered, the article's map on a started Pool(2) next to the serial loop
// (rows in vectors, copied to the workers, and rows in an mproc::Array, read in place), and a
// Pool(2) built, closed and joined. bench/pool_python.py measures Python's side.
#include <algorithm>
#include <array>
#include <chrono>
#include <vector>

#include <benchmark/benchmark.h>

#include "article_workload.hpp"

#include "mproc/mproc.hpp"

namespace {

int tiny(int x) { return x + 1; }

using bench::article_rows;
using bench::howmany_within_range;

// The article's rows again, in an mproc::Array: shared memory made before the pool, which the
// pool's workers read in place.
using Row = std::array<int, 6>;

int howmany_within_range_row(const Row& row) {
  return static_cast<int>(std::count_if(row.begin(), row.end(), [](int v) { return v >= 4 && v <= 8; }));
}

const mproc::Array<Row>& article_array() {
  static const mproc::Array<Row> rows = [] {
    const auto& source = article_rows();
    mproc::Array<Row> out(source.size());
    for (std::size_t i = 0; i < source.size(); ++i) std::copy(source[i].begin(), source[i].end(), out[i].begin());
    return out;
  }();
  return rows;
}

mproc::Pool& started_pool() {
  article_array();  // before the fork: the workers share it
  static mproc::Pool pool(2);
  return pool;
}

double median(std::vector<double>& v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// First, while this process is small: a fork copies the page tables of everything the process
// has touched, so the figure grows with the parent's memory (by ~4x after the benchmarks below).
void BM_PoolStartStop(benchmark::State& state) {
  for (auto _ : state) {
    mproc::Pool pool(2);
    pool.close();
    pool.join();
  }
}
BENCHMARK(BM_PoolStartStop)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ApplyRoundTrip(benchmark::State& state) {
  auto& pool = started_pool();
  // Latency of each call, for the median; a bounded sample, so the process stays small (its
  // size is what a later fork copies page tables for).
  std::vector<double> ns;
  ns.reserve(1 << 18);
  int i = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(pool.apply(tiny, std::tuple{i++}));
    if (ns.size() < ns.capacity())
      ns.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
  }
  state.counters["median_us"] = median(ns) / 1000;
}
BENCHMARK(BM_ApplyRoundTrip)->MinTime(2.0);

void BM_ApplyAsync300k(benchmark::State& state) {
  auto& pool = started_pool();
  constexpr int kTasks = 300000;
  std::vector<mproc::AsyncResult<int>> results;
  results.reserve(kTasks);
  double seconds = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    results.clear();
    for (int i = 0; i < kTasks; ++i) results.push_back(pool.apply_async(tiny, std::tuple{i}));
    long sum = 0;
    for (auto& r : results) sum += r.get();
    benchmark::DoNotOptimize(sum);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  state.counters["us_per_task"] = seconds * 1e6 / (static_cast<double>(state.iterations()) * kTasks);
}
BENCHMARK(BM_ApplyAsync300k)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void BM_ArticleMap(benchmark::State& state) {
  auto& pool = started_pool();
  const auto& rows = article_rows();
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(howmany_within_range, rows));
}
BENCHMARK(BM_ArticleMap)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ArticleSerial(benchmark::State& state) {
  const auto& rows = article_rows();
  for (auto _ : state) benchmark::DoNotOptimize(bench::serial_counts(rows, howmany_within_range));
}
BENCHMARK(BM_ArticleSerial)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same rows in an mproc::Array made before the pool: the workers read them in place.
void BM_ArticleMapShared(benchmark::State& state) {
  auto& pool = started_pool();
  const auto& rows = article_array();
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(howmany_within_range_row, rows));
}
BENCHMARK(BM_ArticleMapShared)->Unit(benchmark::kMillisecond)->UseRealTime();

// As above with a lambda, which the worker's loop can inline (a function pointer it calls).
void BM_ArticleMapSharedLambda(benchmark::State& state) {
  auto& pool = started_pool();
  const auto& rows = article_array();
  auto f = [](const Row& r) { return howmany_within_range_row(r); };
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(f, rows));
}
BENCHMARK(BM_ArticleMapSharedLambda)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ArticleSerialShared(benchmark::State& state) {
  const auto& rows = article_array();
  for (auto _ : state) benchmark::DoNotOptimize(bench::serial_counts(rows, howmany_within_range_row));
}
BENCHMARK(BM_ArticleSerialShared)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
