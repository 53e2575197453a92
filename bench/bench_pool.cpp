// The process Pool's four figures (issue: "How fast"): a synchronous apply round trip, 300000
// apply_async then gathered, the article's map on a started Pool(2) next to the serial loop
// (rows in vectors, copied to the workers, and rows in an mproc::Array, read in place), and a
// Pool(2) built, closed and joined. bench/pool_python.py measures Python's side. Also the cost of
// PoolOptions::output (a map of one-line prints, Output::inherit against Output::lines).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <memory_resource>
#include <vector>

#include <benchmark/benchmark.h>

#include "article_workload.hpp"
#include "stats.hpp"

#include "mproc/mproc.hpp"

namespace {

int tiny(int x) { return x + 1; }

using bench::article_rows;
using bench::howmany_within_range;
using bench::median;

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

// BM_ArticleMap and BM_ArticleMapShared with insights recorded (PoolOptions::insights), Arg 1,
// and without, Arg 0, on two pools made together in the same way, after the others: the cost of
// insights is the ratio of /1 to /0, free of the difference between two pools made at different
// times (the workers of a later fork start from a larger parent).
mproc::Pool& insights_pool(bool on) {
  article_array();
  static mproc::Pool pools[2] = {mproc::Pool(mproc::PoolOptions{.processes = 2}),
                                 mproc::Pool(mproc::PoolOptions{.processes = 2, .insights = true})};
  return pools[on ? 1 : 0];
}
void BM_ArticleMapInsights(benchmark::State& state) {
  auto& pool = insights_pool(state.range(0) != 0);
  const auto& rows = article_rows();
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(howmany_within_range, rows));
  state.SetLabel(state.range(0) ? "insights on" : "insights off");
}
BENCHMARK(BM_ArticleMapInsights)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
void BM_ArticleMapSharedInsights(benchmark::State& state) {
  auto& pool = insights_pool(state.range(0) != 0);
  const auto& rows = article_array();
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(howmany_within_range_row, rows));
  state.SetLabel(state.range(0) ? "insights on" : "insights off");
}
BENCHMARK(BM_ArticleMapSharedInsights)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
// imap at chunksize 1 (the demo's imap: a chunk per row), on 20000 rows.
void BM_ImapChunk1Insights(benchmark::State& state) {
  auto& pool = insights_pool(state.range(0) != 0);
  const auto& all = article_rows();
  const std::vector<std::vector<int>> rows(all.begin(), all.begin() + 20000);
  for (auto _ : state) {
    long sum = 0;
    for (int c : pool.imap(howmany_within_range, rows)) sum += c;
    benchmark::DoNotOptimize(sum);
  }
  state.SetLabel(state.range(0) ? "insights on" : "insights off");
}
BENCHMARK(BM_ImapChunk1Insights)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ArticleSerialShared(benchmark::State& state) {
  const auto& rows = article_array();
  for (auto _ : state) benchmark::DoNotOptimize(bench::serial_counts(rows, howmany_within_range_row));
}
BENCHMARK(BM_ArticleSerialShared)->Unit(benchmark::kMillisecond)->UseRealTime();

// PoolOptions::output's cost: a map of 100000 tasks that each print one line, on a Pool(2) built
// for each run, with the program's stdout on /dev/null (the workers' with Output::inherit; the
// relay thread's with Output::lines). Arg 0: Output::inherit, 1: Output::lines.
int print_line(int x) { return std::printf("task %d says hello\n", x); }

// Points stdout at /dev/null while alive (the benchmark's report goes out after it).
class StdoutToNull {
 public:
  StdoutToNull() : null_(::open("/dev/null", O_WRONLY | O_CLOEXEC)), saved_(::dup(1)) {
    std::fflush(stdout);
    ::dup2(null_, 1);
  }
  ~StdoutToNull() {
    std::fflush(stdout);
    ::dup2(saved_, 1);
    ::close(saved_);
    ::close(null_);
  }
  StdoutToNull(const StdoutToNull&) = delete;
  StdoutToNull& operator=(const StdoutToNull&) = delete;

 private:
  int null_, saved_;
};

void BM_PrintingMap(benchmark::State& state) {
  const auto output = state.range(0) ? mproc::Output::lines : mproc::Output::inherit;
  std::vector<int> xs(100000);
  for (int i = 0; i < 100000; ++i) xs[static_cast<std::size_t>(i)] = i;
  StdoutToNull quiet;
  for (auto _ : state) {
    mproc::Pool pool(mproc::PoolOptions{.processes = 2, .output = output});
    benchmark::DoNotOptimize(pool.map(print_line, xs));
    pool.close();
    pool.join();  // every line written: the relay has read the pipes to their end
  }
  state.SetLabel(state.range(0) ? "Output::lines" : "Output::inherit");
}
BENCHMARK(BM_PrintingMap)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// The natural port: rows in a std::pmr::vector<std::pmr::vector<int>> on the shared heap, made
// after the pool; the workers read them in place (issue 16's target: 1.3x the serial loop below).
using PmrRow = std::pmr::vector<int>;

int howmany_within_range_pmr(const PmrRow& row) {
  return static_cast<int>(std::count_if(row.begin(), row.end(), [](int v) { return v >= 4 && v <= 8; }));
}

const std::pmr::vector<PmrRow>& article_heap_rows() {
  static const std::pmr::vector<PmrRow> rows = [] {
    (void)started_pool();
    std::pmr::vector<PmrRow> out(mproc::shared_resource());
    out.reserve(article_rows().size());
    for (const auto& r : article_rows()) out.emplace_back(r.begin(), r.end());
    return out;
  }();
  return rows;
}

void BM_ArticleMapHeapPmr(benchmark::State& state) {
  auto& pool = started_pool();
  const auto& rows = article_heap_rows();
  const auto copied = mproc::heap_stats().maps_copied;
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(howmany_within_range_pmr, rows));
  if (mproc::heap_stats().maps_copied != copied) state.SkipWithError("the rows were copied, not read in place");
}
BENCHMARK(BM_ArticleMapHeapPmr)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ArticleSerialHeapPmr(benchmark::State& state) {
  const auto& rows = article_heap_rows();
  for (auto _ : state) benchmark::DoNotOptimize(bench::serial_counts(rows, howmany_within_range_pmr));
}
BENCHMARK(BM_ArticleSerialHeapPmr)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
