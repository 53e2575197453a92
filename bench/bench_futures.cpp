// concurrent.futures on Pool(2) (issue 17, "How fast"), each next to the same work through the
// Pool API in the same run: submit().result() against apply(); as_completed over 100000 submitted
// tiny tasks against apply_async then get(); cancel() of 100000 queued tasks (counted: none may
// run); terminate() of a running task: until its future throws CancelledError, then a map of 1000
// squares on the replaced worker and the other. On ThreadPool(1): a loop of wait(FIRST_COMPLETED)
// over 2000 futures that finish one per round.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <semaphore>
#include <thread>
#include <tuple>
#include <vector>

#include <benchmark/benchmark.h>

#include "mproc/mproc.hpp"
#include "task_counts.hpp"

using namespace std::chrono_literals;

namespace {

int tiny(int x) { return x + 1; }
int sqr(int x) { return x * x; }

// What the workers and this process both see (the tests' task_counts.hpp): runs of counted(),
// and block()'s release.
using Shared = mproc::test::TaskCounts;
using mproc::test::block;
using mproc::test::counted;
Shared& shared() { return mproc::test::task_counts(); }
int spin_forever(int) {
  for (;;) std::this_thread::sleep_for(1ms);
}

mproc::Pool& started_pool() {
  shared();  // before the fork
  static mproc::Pool pool(2);
  return pool;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void BM_ApplyRoundTrip(benchmark::State& state) {
  auto& pool = started_pool();
  int i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(pool.apply(tiny, std::tuple{i++}));
}
BENCHMARK(BM_ApplyRoundTrip)->MinTime(1.0);

void BM_SubmitResultRoundTrip(benchmark::State& state) {
  auto& pool = started_pool();
  int i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(pool.submit(tiny, i++).result());
}
BENCHMARK(BM_SubmitResultRoundTrip)->MinTime(1.0);

constexpr int kTasks = 100000;

// The usual loop over wait(FIRST_COMPLETED) on ThreadPool(1), 2000 futures that finish one per
// round: each task waits for a permit, and each round gives one (the pool runs them in any order).
// Each round leaves a done callback on every future still pending unless wait() takes them
// back; callbacks_on_last: those the last future held before its round.
void BM_WaitFirstCompletedLoop2000(benchmark::State& state) {
  constexpr int kFutures = 2000;
  mproc::ThreadPool pool(1);
  double left = 0;
  for (auto _ : state) {
    std::counting_semaphore<> permits(0);
    std::vector<mproc::Future<int>> pending;
    pending.reserve(kFutures);
    for (int i = 0; i < kFutures; ++i)
      pending.push_back(pool.submit(
          [&permits](int n) {
            permits.acquire();
            return n;
          },
          i));
    long sum = 0;
    while (!pending.empty()) {
      if (pending.size() == 1) left = static_cast<double>(mproc::detail::FutureAccess::job(pending[0]).on_done_count());
      permits.release();
      auto [done, not_done] = mproc::wait(std::move(pending), mproc::FIRST_COMPLETED);
      for (auto& f : done) sum += f.result();
      pending = std::move(not_done);
    }
    benchmark::DoNotOptimize(sum);
  }
  state.counters["callbacks_on_last"] = left;
}
BENCHMARK(BM_WaitFirstCompletedLoop2000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ApplyAsyncGet100k(benchmark::State& state) {
  auto& pool = started_pool();
  double seconds = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<mproc::AsyncResult<int>> results;
    results.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) results.push_back(pool.apply_async(tiny, std::tuple{i}));
    long sum = 0;
    for (auto& r : results) sum += r.get();
    benchmark::DoNotOptimize(sum);
    seconds += seconds_since(t0);
  }
  state.counters["us_per_task"] = seconds * 1e6 / (static_cast<double>(state.iterations()) * kTasks);
}
BENCHMARK(BM_ApplyAsyncGet100k)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SubmitAsCompleted100k(benchmark::State& state) {
  auto& pool = started_pool();
  double seconds = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<mproc::Future<int>> futures;
    futures.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) futures.push_back(pool.submit(tiny, i));
    long sum = 0;
    for (auto& f : mproc::as_completed(std::move(futures))) sum += f.result();
    benchmark::DoNotOptimize(sum);
    seconds += seconds_since(t0);
  }
  state.counters["us_per_task"] = seconds * 1e6 / (static_cast<double>(state.iterations()) * kTasks);
}
BENCHMARK(BM_SubmitAsCompleted100k)->Unit(benchmark::kMillisecond)->UseRealTime();

// Both workers blocked, 100000 tasks queued behind them, then every one cancelled: the time of
// the cancels alone; runs counts any that ran (must stay 0).
void BM_Cancel100kQueued(benchmark::State& state) {
  auto& pool = started_pool();
  double seconds = 0;
  for (auto _ : state) {
    Shared& s = shared();
    s.release = 0;
    s.started = 0;
    s.runs = 0;
    auto a = pool.submit(block, 0);
    auto b = pool.submit(block, 1);
    while (s.started.load() < 2) std::this_thread::sleep_for(100us);
    std::vector<mproc::Future<int>> futures;
    futures.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) futures.push_back(pool.submit(counted, i));
    auto t0 = std::chrono::steady_clock::now();
    long cancelled = 0;
    for (auto& f : futures) cancelled += f.cancel();
    seconds += seconds_since(t0);
    s.release = 1;
    (void)a.result();
    (void)b.result();
    state.counters["cancelled"] = static_cast<double>(cancelled);
    state.counters["ran"] = static_cast<double>(s.runs.load());
  }
  state.counters["ms_all_cancels"] = seconds * 1e3 / static_cast<double>(state.iterations());
}
BENCHMARK(BM_Cancel100kQueued)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

// terminate() of a running task: until its future reports CancelledError; then a map of 1000
// squares (chunksize 1) and the workers that ran it.
void BM_TerminateRunning(benchmark::State& state) {
  auto& pool = started_pool();
  double to_cancelled = 0;
  double map_after = 0;
  for (auto _ : state) {
    auto f = pool.submit(spin_forever, 0);
    while (!f.running()) std::this_thread::sleep_for(100us);
    auto t0 = std::chrono::steady_clock::now();
    f.terminate();
    try {
      (void)f.result();
    } catch (const mproc::CancelledError&) {
    }
    to_cancelled += seconds_since(t0);
    std::vector<int> xs(1000);
    for (int i = 0; i < 1000; ++i) xs[static_cast<std::size_t>(i)] = i;
    auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(pool.map(sqr, xs, 1));
    map_after += seconds_since(t1);
    state.counters["live_workers"] =
        static_cast<double>(std::ranges::count_if(pool.backend().worker_pids(), [](int pid) { return pid != 0; }));
  }
  state.counters["ms_to_cancelled"] = to_cancelled * 1e3 / static_cast<double>(state.iterations());
  state.counters["ms_map_1000_after"] = map_after * 1e3 / static_cast<double>(state.iterations());
}
BENCHMARK(BM_TerminateRunning)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);

}  // namespace

BENCHMARK_MAIN();
