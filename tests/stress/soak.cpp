// The crash soak: a Pool(2) runs 2000 tasks of which a random 10% SIGKILL their own worker; every
// other result must be right, the pool must then run a map on its full number of workers, and
// its destructor must return. Repeated (100 runs in the tier), each run in its own child under
// a deadline, so that a hang is counted and diagnosed, not waited for.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>

#include <mproc/mproc.hpp>

#include "stress.hpp"

namespace stress {
namespace {

int maybe_die(int x, bool die) {
  if (die) ::kill(::getpid(), SIGKILL);
  return x * 3;
}

int square(int x) { return x * x; }

// Every result of the soak's tasks; returns how many were lost (the dying ones, all of them).
int check_results(const std::vector<mproc::AsyncResult<int>>& results, const std::vector<bool>& dies) {
  int lost = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    std::string task = "task " + std::to_string(i);
    try {
      int v = results[i].get(std::chrono::seconds(10));
      if (dies[i]) throw Failure(task + " killed its worker but returned " + std::to_string(v));
      if (v != static_cast<int>(i) * 3) throw Failure(task + " returned " + std::to_string(v));
    } catch (const mproc::WorkerLost& e) {
      if (!dies[i]) throw Failure(task + " did not kill its worker but failed: " + e.what());
      ++lost;
    } catch (const mproc::TimeoutError&) {
      throw Failure(task + ": no result within 10 s");
    }
  }
  return lost;
}

void check_full_pool(mproc::Pool& pool) {
  std::vector<int> in(1000);
  std::iota(in.begin(), in.end(), 0);
  auto out = pool.map(square, in, 1);
  for (std::size_t i = 0; i < in.size(); ++i)
    if (out[i] != in[i] * in[i]) throw Failure("after the soak, map item " + std::to_string(i) + " is wrong");
  auto pids = pool.backend().worker_pids();
  if (pids.size() != 2 || std::count(pids.begin(), pids.end(), 0) != 0)
    throw Failure("after the soak, the pool does not have its 2 workers");
}

void soak_run(std::uint64_t seed, int tasks) {
  std::mt19937_64 gen(seed);
  std::vector<bool> dies(static_cast<std::size_t>(tasks));
  for (auto&& d : dies) d = gen() % 10 == 0;
  auto start = std::chrono::steady_clock::now();
  phase("building the pool");
  std::optional<mproc::Pool> pool;
  pool.emplace(2);
  try {
    phase("submitting");
    std::vector<mproc::AsyncResult<int>> results;
    for (int i = 0; i < tasks; ++i)
      results.push_back(pool->apply_async(maybe_die, std::tuple{i, bool(dies[static_cast<std::size_t>(i)])}));
    phase("collecting the results");
    figure("lost", check_results(results, dies));
    phase("a map on the full pool");
    check_full_pool(*pool);
  } catch (const std::exception& e) {
    // Said now: the destructor, run while this unwinds, may hang.
    phase(std::string("destroying the pool after a failure: ") + e.what());
    throw;
  }
  phase("destroying the pool (~Pool: close, then join), every result already returned");
  auto destroy = std::chrono::steady_clock::now();
  pool.reset();
  figure("destroy_s", seconds_since(destroy));
  figure("run_s", seconds_since(start));
}

// Every 10 runs, a line on stderr: a run stopped by the hard timeout still shows how far it got.
void progress(int runs, int hangs, const std::vector<double>& cpu_s) {
  std::cerr.precision(3);
  std::cerr << "  soak: " << runs << " runs, " << hangs << " hung, CPU median " << median(cpu_s) << " s per run\n";
}

}  // namespace

bool soak(const Args& args) {
  int tasks = args.count ? static_cast<int>(args.count) : 2000;
  std::chrono::seconds deadline(args.deadline_s ? args.deadline_s : 30);
  int runs = 0, passed = 0, hangs = 0;
  long lost = 0;
  std::vector<double> run_s, destroy_ms, cpu_s;
  for (int i = 0; i < args.repeat && hangs < args.max_hangs && !stop_requested(); ++i, ++runs) {
    Args one = args;
    one.seed = args.seed + static_cast<std::uint64_t>(i);
    one.repeat = 1;
    auto out = run_isolated([&] { soak_run(one.seed, tasks); }, deadline, args.gdb && hangs == 0);
    cpu_s.push_back(out.cpu_seconds);
    if (i % 10 == 9) progress(i + 1, hangs, cpu_s);
    if (out.kind == Outcome::passed) {
      ++passed;
      lost += static_cast<long>(out.value("lost"));
      run_s.push_back(out.value("run_s"));
      destroy_ms.push_back(out.value("destroy_s") * 1000);
      continue;
    }
    if (out.kind == Outcome::hung) ++hangs;
    if (out.kind == Outcome::stopped) break;
    const char* kind[] = {"passed", "FAILED", "HUNG", "CRASHED", ""};
    std::cout << "  run " << i << " " << kind[out.kind] << ": " << out.message
              << "\n  rerun this run alone: " << rerun_command(one) << "\n";
  }
  std::ostringstream fig;
  fig.precision(3);
  fig << passed << "/" << runs << " runs passed of " << args.repeat << " asked, " << hangs << " hung"
      << (hangs >= args.max_hangs && runs < args.repeat ? " (stopped at --max-hangs)" : "") << "; " << tasks
      << " tasks per run, " << lost << " lost to killed workers in passing runs; run median " << median(run_s)
      << " s, max " << maximum(run_s) << " s, CPU median " << median(cpu_s) << " s; destructor median "
      << median(destroy_ms) << " ms, max " << maximum(destroy_ms) << " ms";
  if (stop_requested()) fig << "; stopped by a signal (the hard timeout?) after " << runs << " runs";
  return report(args, passed == args.repeat, fig.str());
}

}  // namespace stress
