// ThreadPool against the peers a C++ programmer would reach for instead (issue #5), in one run on
// two workers: the article's map over 300000 rows (oneTBB parallel_for and task_group, OpenMP),
// fire-and-forget empty tasks (ns per task), and the round trip of one empty task. A table at the
// end puts mproc's figures next to the peers', with the targets.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "article_workload.hpp"

#include "mproc/thread_pool.hpp"

#if MPROC_HAVE_TBB
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#endif
#if MPROC_HAVE_OPENMP
#include <omp.h>
#endif

namespace {

constexpr int kWorkers = 2;

using bench::article_rows;
using bench::howmany_within_range;

mproc::ThreadPool& pool() {
  static mproc::ThreadPool p(kWorkers);
  return p;
}

#if MPROC_HAVE_TBB
// Two threads, as the pool: the calling thread takes one slot, one TBB worker the other.
tbb::task_arena& arena() {
  static tbb::task_arena a = [] {
    tbb::task_arena t(kWorkers);
    t.initialize();
    return t;
  }();
  return a;
}
#endif

// Nanoseconds per operation over the whole timed loop, for benchmarks whose iteration is a batch.
void set_ns_per(benchmark::State& state, const char* name, std::chrono::steady_clock::duration elapsed,
                double ops_per_iteration) {
  double ns = std::chrono::duration<double, std::nano>(elapsed).count();
  state.counters[name] = ns / (static_cast<double>(state.iterations()) * ops_per_iteration);
}

// --- (a) the article's map -------------------------------------------------------------------

void Map_serial(benchmark::State& state) {
  const auto& rows = article_rows();
  for (auto _ : state) {
    std::vector<int> out(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) out[i] = howmany_within_range(rows[i]);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(Map_serial)->Name("Map/serial")->Unit(benchmark::kMicrosecond)->UseRealTime();

void Map_mproc(benchmark::State& state) {
  const auto& rows = article_rows();
  for (auto _ : state) benchmark::DoNotOptimize(pool().map(howmany_within_range, rows));
}
BENCHMARK(Map_mproc)->Name("Map/mproc_ThreadPool_map")->Unit(benchmark::kMicrosecond)->UseRealTime();

// The same through a lambda, as the peers below: the compiler may inline the row count into the
// pool's loop (a function pointer is called through, row by row).
void Map_mproc_lambda(benchmark::State& state) {
  const auto& rows = article_rows();
  for (auto _ : state)
    benchmark::DoNotOptimize(pool().map([](const std::vector<int>& row) { return howmany_within_range(row); }, rows));
}
BENCHMARK(Map_mproc_lambda)->Name("Map/mproc_ThreadPool_map_lambda")->Unit(benchmark::kMicrosecond)->UseRealTime();

#if MPROC_HAVE_TBB
void Map_tbb_parallel_for(benchmark::State& state) {
  const auto& rows = article_rows();
  for (auto _ : state) {
    std::vector<int> out(rows.size());
    arena().execute([&] {
      tbb::parallel_for(tbb::blocked_range<std::size_t>(0, rows.size()), [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t i = r.begin(); i != r.end(); ++i) out[i] = howmany_within_range(rows[i]);
      });
    });
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(Map_tbb_parallel_for)->Name("Map/tbb_parallel_for")->Unit(benchmark::kMicrosecond)->UseRealTime();

// The same calling the row function through a pointer, as the pool's workers call a function
// passed by name: the reference for mproc_ThreadPool_map (volatile, so the compiler cannot see
// which function it is and inline it).
int (*volatile g_row_function)(const std::vector<int>&) = howmany_within_range;

void Map_tbb_parallel_for_pointer(benchmark::State& state) {
  const auto& rows = article_rows();
  for (auto _ : state) {
    std::vector<int> out(rows.size());
    auto* fn = g_row_function;
    arena().execute([&] {
      tbb::parallel_for(tbb::blocked_range<std::size_t>(0, rows.size()), [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t i = r.begin(); i != r.end(); ++i) out[i] = fn(rows[i]);
      });
    });
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(Map_tbb_parallel_for_pointer)
    ->Name("Map/tbb_parallel_for_pointer")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// The same chunks as the pool's default chunksize (n / (4 x workers)), one task each.
void Map_tbb_task_group(benchmark::State& state) {
  const auto& rows = article_rows();
  const std::size_t chunk = (rows.size() + 4 * kWorkers - 1) / (4 * kWorkers);
  for (auto _ : state) {
    std::vector<int> out(rows.size());
    arena().execute([&] {
      tbb::task_group tg;
      for (std::size_t lo = 0; lo < rows.size(); lo += chunk) {
        tg.run([&, lo] {
          for (std::size_t i = lo, hi = std::min(rows.size(), lo + chunk); i < hi; ++i)
            out[i] = howmany_within_range(rows[i]);
        });
      }
      tg.wait();
    });
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(Map_tbb_task_group)->Name("Map/tbb_task_group")->Unit(benchmark::kMicrosecond)->UseRealTime();
#endif

#if MPROC_HAVE_OPENMP
void Map_openmp(benchmark::State& state) {
  const auto& rows = article_rows();
  const auto n = static_cast<std::ptrdiff_t>(rows.size());
  for (auto _ : state) {
    std::vector<int> out(rows.size());
#pragma omp parallel for num_threads(kWorkers) schedule(static)
    for (std::ptrdiff_t i = 0; i < n; ++i)
      out[static_cast<std::size_t>(i)] = howmany_within_range(rows[static_cast<std::size_t>(i)]);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(Map_openmp)->Name("Map/openmp_parallel_for")->Unit(benchmark::kMicrosecond)->UseRealTime();
#endif

// --- (b) fire-and-forget empty tasks: submit N, then wait for all -------------------------------
// N = 1000 and 10000: mproc keeps one job per task until its AsyncResult goes, so at 10000 its
// jobs (~200 bytes each) no longer fit in a core's L2 (1 MiB here); a TBB task is recycled as
// soon as it has run.
// "Empty": a compiler barrier only, which no compiler removes (OpenMP drops a task with an
// empty body altogether).

void Empty_mproc(benchmark::State& state) {
  auto& p = pool();
  std::vector<mproc::AsyncResult<mproc::None>> results;
  const auto n = static_cast<int>(state.range(0));
  results.reserve(static_cast<std::size_t>(n));
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    for (int i = 0; i < n; ++i) results.push_back(p.apply_async([] { benchmark::ClobberMemory(); }));
    for (auto& r : results) r.wait();
    results.clear();
  }
  set_ns_per(state, "ns_per_task", std::chrono::steady_clock::now() - t0, n);
}
BENCHMARK(Empty_mproc)
    ->Name("Empty/mproc_ThreadPool_apply_async")
    ->Arg(1000)
    ->Arg(10000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

#if MPROC_HAVE_TBB
void Empty_tbb(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    arena().execute([n] {
      tbb::task_group tg;
      for (int i = 0; i < n; ++i) tg.run([] { benchmark::ClobberMemory(); });
      tg.wait();
    });
  }
  set_ns_per(state, "ns_per_task", std::chrono::steady_clock::now() - t0, n);
}
BENCHMARK(Empty_tbb)->Name("Empty/tbb_task_group")->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond)->UseRealTime();
#endif

#if MPROC_HAVE_OPENMP
void Empty_openmp(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
#pragma omp parallel num_threads(kWorkers)
#pragma omp single
    {
      for (int i = 0; i < n; ++i) {
#pragma omp task
        benchmark::ClobberMemory();
      }
#pragma omp taskwait
    }
  }
  set_ns_per(state, "ns_per_task", std::chrono::steady_clock::now() - t0, n);
}
BENCHMARK(Empty_openmp)->Name("Empty/openmp_task")->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond)->UseRealTime();
#endif

// --- (c) one empty task there and back -----------------------------------------------------------

void RoundTrip_mproc(benchmark::State& state) {
  auto& p = pool();
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(p.apply_async([] {}).get());
  set_ns_per(state, "ns_per_round_trip", std::chrono::steady_clock::now() - t0, 1);
}
BENCHMARK(RoundTrip_mproc)->Name("RoundTrip/mproc_ThreadPool_apply_async_get")->UseRealTime();

#if MPROC_HAVE_TBB
// The task goes to the arena's worker thread and the caller watches a flag: a true hand-off,
// as the pool's (a task_group's run + wait from outside would run the task on the caller).
void RoundTrip_tbb(benchmark::State& state) {
  std::atomic<bool> done{false};
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    done.store(false, std::memory_order_relaxed);
    arena().enqueue([&] { done.store(true, std::memory_order_release); });
    while (!done.load(std::memory_order_acquire)) {
    }
  }
  set_ns_per(state, "ns_per_round_trip", std::chrono::steady_clock::now() - t0, 1);
}
BENCHMARK(RoundTrip_tbb)->Name("RoundTrip/tbb_arena_enqueue")->UseRealTime();
#endif

#if MPROC_HAVE_OPENMP
// OpenMP has no hand-off of a single task to a running team from outside; its round trip is a
// parallel region with an empty body (fork and join of the two threads).
void RoundTrip_openmp(benchmark::State& state) {
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
#pragma omp parallel num_threads(kWorkers)
    { benchmark::ClobberMemory(); }
  }
  set_ns_per(state, "ns_per_round_trip", std::chrono::steady_clock::now() - t0, 1);
}
BENCHMARK(RoundTrip_openmp)->Name("RoundTrip/openmp_parallel_region")->UseRealTime();
#endif

// --- the summary -------------------------------------------------------------------------------

// The console output as usual, and each benchmark's headline figure (its ns_per_* counter, else
// its real time) kept: the median when repeated, for the table printed at the end.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) {
      if (run.error_occurred) continue;
      bool single = run.run_type == Run::RT_Iteration && run.repetitions <= 1;
      bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (!single && !median) continue;
      double ns = run.GetAdjustedRealTime() / benchmark::GetTimeUnitMultiplier(run.time_unit) * 1e9;
      for (const char* c : {"ns_per_task", "ns_per_round_trip"})
        if (auto it = run.counters.find(c); it != run.counters.end()) ns = it->second.value;
      std::string name = run.run_name.function_name;
      if (!run.run_name.args.empty()) name += "/" + run.run_name.args;
      figures_[name] = ns;
    }
  }

  void print_summary() const {
    std::printf("\nmproc::ThreadPool(%d) next to its peers (%s):\n", kWorkers, "medians when repeated");
    // Like for like: the row function inlined into the loop (a lambda) against TBB's lambda, and
    // called through a pointer (passed by name) against TBB calling through one.
    row(
        "(a) article map, us per map", "Map",
        [](const std::string& mine) {
          return mine.ends_with("_lambda") ? "tbb_parallel_for" : "tbb_parallel_for_pointer";
        },
        1e-3, 1.2);
    row("(b) empty tasks, ns per task", "Empty", nullptr, 1, 0, 150);
    row("(c) apply_async + get, ns", "RoundTrip", nullptr, 1, 0, 1000);
  }

 private:
  // One line per contender of a group, then mproc's against the target: a ratio to the
  // reference that reference_for names for it, or an absolute bound.
  void row(const char* title, const std::string& group, const char* (*reference_for)(const std::string&), double scale,
           double ratio, double bound = 0) const {
    std::printf("%s\n", title);
    std::vector<std::pair<std::string, double>> mine;
    for (const auto& [name, ns] : figures_) {
      if (name.rfind(group + "/", 0) != 0) continue;
      if (name.find("mproc") != std::string::npos) mine.emplace_back(name.substr(group.size() + 1), ns);
      std::printf("  %-45s %10.1f\n", name.c_str(), ns * scale);
    }
    for (const auto& [name, ns] : mine) {
      const std::string reference = reference_for ? reference_for(name) : "";
      const double* ref = reference_for ? find(group + "/" + reference) : nullptr;
      if (ratio > 0 && ref) {
        std::printf("  %s / %s = %.2fx (target <= %.1fx): %s\n", name.c_str(), reference.c_str(), ns / *ref, ratio,
                    ns / *ref <= ratio ? "met" : "MISSED");
      } else if (bound > 0) {
        std::printf("  %s: %.1f ns (target <= %.0f ns): %s\n", name.c_str(), ns, bound, ns <= bound ? "met" : "MISSED");
      }
    }
  }
  const double* find(const std::string& name) const {
    auto it = figures_.find(name);
    return it == figures_.end() ? nullptr : &it->second;
  }

  std::map<std::string, double> figures_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_summary();
  benchmark::Shutdown();
}
