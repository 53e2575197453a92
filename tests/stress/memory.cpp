// 2 million apply_async on one Pool(2), in batches of 10000 gathered before the next: the parent's
// and each worker's resident size (VmRSS) after the first 200000 tasks is the baseline, and no
// later reading may exceed it by the limit (20 MB). Every result is checked.
#include <sstream>

#include <mproc/mproc.hpp>

#include "stress.hpp"

namespace stress {
namespace {

long next_of(long x) { return x + 1; }

struct Rss {
  long base_kb = -1;
  long max_kb = 0;
  void read(long kb) {
    if (base_kb < 0) base_kb = kb;
    max_kb = std::max(max_kb, kb);
  }
  [[nodiscard]] double growth_mb() const { return static_cast<double>(max_kb - base_kb) / 1024; }
};

void run_batch(mproc::Pool& pool, long first, long n, std::vector<mproc::AsyncResult<long>>& window) {
  window.clear();
  for (long k = 0; k < n; ++k) window.push_back(pool.apply_async(next_of, std::tuple{first + k}));
  for (long k = 0; k < n; ++k) {
    long v = window[static_cast<std::size_t>(k)].get(std::chrono::seconds(30));
    if (v != first + k + 1) throw Failure("task " + std::to_string(first + k) + " returned " + std::to_string(v));
  }
}

void memory_run(long tasks, long warmup, double limit_mb) {
  constexpr long kBatch = 10000;
  mproc::Pool pool(2);
  const auto workers = pool.backend().worker_pids();
  Rss parent;
  std::vector<Rss> worker(workers.size());
  std::vector<mproc::AsyncResult<long>> window;
  window.reserve(kBatch);
  figure("start_kb", static_cast<double>(resident_kb(::getpid())));
  auto start = std::chrono::steady_clock::now();
  for (long done = 0; done < tasks;) {
    phase("tasks from " + std::to_string(done));
    long n = std::min(kBatch, tasks - done);
    run_batch(pool, done, n, window);
    done += n;
    if (done < warmup) continue;
    parent.read(resident_kb(::getpid()));
    for (std::size_t w = 0; w < workers.size(); ++w) worker[w].read(resident_kb(workers[w]));
  }
  figure("us_per_task", seconds_since(start) * 1e6 / static_cast<double>(tasks));
  figure("parent_base_kb", static_cast<double>(parent.base_kb));
  figure("parent_max_kb", static_cast<double>(parent.max_kb));
  double worst = parent.growth_mb(), worker_worst = 0;
  for (const auto& w : worker) worker_worst = std::max(worker_worst, w.growth_mb());
  figure("parent_growth_mb", parent.growth_mb());
  figure("worker_growth_mb", worker_worst);
  figure("worker_base_kb", static_cast<double>(worker.empty() ? 0 : worker[0].base_kb));
  if (pool.backend().worker_pids() != workers) throw Failure("a worker was replaced during the run");
  if (worst >= limit_mb || worker_worst >= limit_mb) throw Failure("resident size grew by the limit or more");
}

}  // namespace

bool memory(const Args& args) {
  long tasks = args.count ? args.count : 2000000;
  long warmup = args.warmup ? args.warmup : 200000;
  if (warmup >= tasks) throw std::invalid_argument("memory: --warmup must be below --count");
  return run_scenario(
      args, [&] { memory_run(tasks, warmup, args.limit_mb); }, 240,
      [&](const Outcome& out) {
        std::ostringstream fig;
        fig.precision(3);
        fig << tasks << " apply_async in batches of 10000, " << out.value("us_per_task")
            << " us per task; parent VmRSS " << out.value("start_kb") / 1024 << " MB at start, "
            << out.value("parent_base_kb") / 1024 << " MB after " << warmup << ", max "
            << out.value("parent_max_kb") / 1024 << " MB: growth " << out.value("parent_growth_mb") << " MB; workers "
            << out.value("worker_base_kb") / 1024 << " MB after " << warmup << ", worst growth "
            << out.value("worker_growth_mb") << " MB (limit " << args.limit_mb << " MB)";
        return fig.str();
      });
}

}  // namespace stress
