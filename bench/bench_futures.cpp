// concurrent.futures on Pool(2) (issue 17, "How fast"), each next to the same work through the
// Pool API in the same run: submit().result() against apply(); as_completed over 100000 submitted
// tiny tasks against apply_async then get(); cancel() of 100000 queued tasks (counted: none may
// run), and of one map_async of 100000 queued chunks between two others; terminate() of a running
// task: until its future throws CancelledError, then a map of 1000 squares on the replaced worker
// and the other. On ThreadPool(1): a loop of wait(FIRST_COMPLETED) over 2000 futures that finish
// one per round.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
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

// Both workers held, each by a block() task, until release(): what is submitted meanwhile queues.
class BlockedWorkers {
 public:
  explicit BlockedWorkers(mproc::Pool& pool) {
    Shared& s = shared();
    s.release = 0;
    s.started = 0;
    s.runs = 0;
    a_.emplace(pool.submit(block, 0));
    b_.emplace(pool.submit(block, 1));
    while (s.started.load() < 2) std::this_thread::sleep_for(100us);
  }
  void release() {
    shared().release = 1;
    (void)a_->result();
    (void)b_->result();
  }

 private:
  std::optional<mproc::Future<int>> a_, b_;
};

// Both workers blocked, 100000 tasks queued behind them, then every one cancelled: the time
// reported is the cancels' alone (manual time); ran counts any task that ran (must stay 0).
void BM_Cancel100kQueued(benchmark::State& state) {
  auto& pool = started_pool();
  for (auto _ : state) {
    BlockedWorkers blocked(pool);
    std::vector<mproc::Future<int>> futures;
    futures.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) futures.push_back(pool.submit(counted, i));
    auto t0 = std::chrono::steady_clock::now();
    long cancelled = 0;
    for (auto& f : futures) cancelled += f.cancel();
    state.SetIterationTime(seconds_since(t0));
    blocked.release();
    state.counters["cancelled"] = static_cast<double>(cancelled);
    state.counters["ran"] = static_cast<double>(shared().runs.load());
  }
}
BENCHMARK(BM_Cancel100kQueued)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(3);

// The same behind blocked workers for one map_async of 100000 chunks (chunksize 1) queued
// between two maps of 10000 that go on, whose cancel() takes all of its chunks out of the middle
// of the queue at once: the time reported is that cancel's (manual time); ran counts its items
// that ran (must stay 0).
void BM_CancelMap100kQueued(benchmark::State& state) {
  auto& pool = started_pool();
  std::vector<int> xs(kTasks);
  for (int i = 0; i < kTasks; ++i) xs[static_cast<std::size_t>(i)] = i;
  const std::vector<int> others(10000, 3);
  for (auto _ : state) {
    BlockedWorkers blocked(pool);
    auto before = pool.map_async(sqr, others, 1);
    auto r = pool.map_async(counted, xs, 1);
    auto after = pool.map_async(sqr, others, 1);
    auto t0 = std::chrono::steady_clock::now();
    const bool cancelled = r.cancel();
    state.SetIterationTime(seconds_since(t0));
    blocked.release();
    benchmark::DoNotOptimize(before.get());
    benchmark::DoNotOptimize(after.get());
    r.wait();
    state.counters["cancelled"] = cancelled ? 1 : 0;
    state.counters["ran"] = static_cast<double>(shared().runs.load());
  }
}
BENCHMARK(BM_CancelMap100kQueued)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(3);

// terminate() of a running task: the time reported is until its future reports CancelledError
// (manual time); then a map of 1000 squares (chunksize 1), timed in a counter, and the workers
// that ran it.
void BM_TerminateRunning(benchmark::State& state) {
  auto& pool = started_pool();
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
    state.SetIterationTime(seconds_since(t0));
    std::vector<int> xs(1000);
    for (int i = 0; i < 1000; ++i) xs[static_cast<std::size_t>(i)] = i;
    auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(pool.map(sqr, xs, 1));
    map_after += seconds_since(t1);
    state.counters["live_workers"] =
        static_cast<double>(std::ranges::count_if(pool.backend().worker_pids(), [](int pid) { return pid != 0; }));
  }
  state.counters["ms_map_1000_after"] = map_after * 1e3 / static_cast<double>(state.iterations());
}
BENCHMARK(BM_TerminateRunning)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(5);

}  // namespace

BENCHMARK_MAIN();
