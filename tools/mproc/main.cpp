// main.cpp: the `mproc` command. `mproc demo` is bench/article.py in C++: the article's matrix,
// counted serially and then with a pool in each of the article's ways, checked and timed. Its
// options, modes, timing rules and --json schema are those written at the top of article.py.
// The modes themselves are in demo.hpp; --pool mpi (demo_mpi.cpp) runs them on an MpiPool under
// mpirun.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <mutex>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <mproc/mproc.hpp>
#include <mproc/thread_pool.hpp>

#include "demo.hpp"
#include "matrix.hpp"

namespace {

using mproc::tool::Counts;
using mproc::tool::Matrix;
using mproc::tool::ModeRun;

const std::vector<std::string> kModes = {"serial",        "apply",     "map",  "starmap",       "apply_async",
                                         "starmap_async", "map_async", "imap", "imap_unordered"};

// --- the program -------------------------------------------------------------------------------

struct Options {
  long long rows = 300000;
  long long cols = 6;
  long long low = 0;
  long long high = 11;
  long long seed = 110;
  int minimum = 4;
  int maximum = 8;
  int processes = static_cast<int>(mproc::process_cpu_count());
  bool processes_given = false;  // --processes on the command line; else an MpiPool takes every worker rank
  std::string modes;
  std::string pool = "all";
  std::string input;
  bool json = false;
};

struct Entry {
  std::string mode;
  std::string pool;
  unsigned workers = 0;  // the pool's processes(); 0 for serial
  double seconds = 0;
  double per_task_us = 0;
  double speedup = 1;
  Counts first10;
  long long total = 0;
  bool ok = true;
};

// A bad option: reported as one line, exit status 2 (as article.py's argparse).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<std::string> parse_modes(const std::string& list) {
  std::vector<std::string> wanted;
  std::stringstream in(list);
  std::string m;
  while (std::getline(in, m, ',')) {
    m.erase(0, m.find_first_not_of(" \t"));
    m.erase(m.find_last_not_of(" \t") + 1);
    if (m.empty()) continue;
    if (std::find(kModes.begin(), kModes.end(), m) == kModes.end())
      throw UsageError("unknown mode '" + m +
                       "'; choose from serial, apply, map, starmap, apply_async, "
                       "starmap_async, map_async, imap, imap_unordered");
    wanted.push_back(m);
  }
  std::vector<std::string> modes{"serial"};  // always first: the reference
  for (const auto& name : kModes)
    if (name != "serial" && (list.empty() || std::find(wanted.begin(), wanted.end(), name) != wanted.end()))
      modes.push_back(name);
  return modes;
}

// The ranks of the MPI job this process was launched in by mpirun (Open MPI or an MPICH-style
// launcher), from its environment, without starting MPI: 1 when not launched by mpirun.
int launched_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* v = std::getenv(name)) return std::max(1, std::atoi(v));
  return 1;
}
int launched_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK"})
    if (const char* v = std::getenv(name)) return std::atoi(v);
  return 0;
}

const std::vector<std::string> kPools = {"process", "thread", "mpi"};  // the order they run in

// --pool: one kind, a comma-separated list, or all: process and thread, and mpi when this build
// has it and the program was launched by mpirun with worker ranks.
std::vector<std::string> parse_pools(const std::string& list) {
  std::vector<std::string> wanted;
  std::stringstream in(list);
  std::string p;
  while (std::getline(in, p, ',')) {
    p.erase(0, p.find_first_not_of(" \t"));
    p.erase(p.find_last_not_of(" \t") + 1);
    if (p.empty()) continue;
    if (p == "all") {
      wanted.insert(wanted.end(), {"process", "thread"});
      if (mproc::tool::mpi_built() && launched_ranks() > 1) wanted.push_back("mpi");
    } else if (std::find(kPools.begin(), kPools.end(), p) != kPools.end()) {
      wanted.push_back(p);
    } else {
      throw UsageError("--pool must be process, thread, mpi or all (or a comma-separated list), not '" + p + "'");
    }
  }
  if (wanted.empty()) throw UsageError("--pool is empty; give process, thread, mpi or all");
  std::vector<std::string> pools;
  for (const auto& name : kPools)
    if (std::find(wanted.begin(), wanted.end(), name) != wanted.end()) pools.push_back(name);
  return pools;
}

// Under mpirun, every rank runs main(). With mpi among the pools, the worker ranks serve from
// here and never return; rank 0 goes on alone. Without it, N ranks would each run the whole demo.
void enter_mpi(const std::vector<std::string>& pools) {
  if (std::find(pools.begin(), pools.end(), "mpi") == pools.end()) {
    if (launched_ranks() > 1) {
      if (launched_rank() != 0) std::exit(2);  // rank 0 says why
      throw UsageError("launched by mpirun with " + std::to_string(launched_ranks()) +
                       " ranks, but --pool does not include mpi: add it (--pool mpi or all), or run without mpirun");
    }
    return;
  }
  if (!mproc::tool::mpi_built())
    throw UsageError("--pool mpi: this mproc was built without MPI (configure found no MPI, or MPROC_MPI=OFF)");
  if (mproc::tool::mpi_start() < 2)
    throw UsageError(
        "--pool mpi needs worker ranks: launch it as mpirun -n 3 mproc demo --pool mpi "
        "(rank 0 runs the demo, ranks 1 .. N-1 are the pool)");
}

void validate(const Options& o) {
  if (o.input.empty()) {
    if (o.rows < 1 || o.cols < 1) throw UsageError("--rows and --cols must be at least 1");
    if (o.high <= o.low) throw UsageError("--high must be greater than --low");
    if (o.seed < 0 || o.seed > 4294967295LL) throw UsageError("--seed must be within [0, 4294967295]");
  }
  if (o.processes < 1) throw UsageError("--processes must be at least 1");
}

// Progress on stderr, only when it is a terminal and the run has taken more than a second.
class Progress {
 public:
  explicit Progress(std::size_t steps) : steps_(steps), tty_(isatty(STDERR_FILENO) == 1) {}
  void step(const std::string& what) {
    ++done_;
    double elapsed = seconds_since(start_);
    if (!tty_ || elapsed < 1.0) return;
    std::fprintf(stderr, "\rmproc demo: %zu/%zu done (%s), %.1f s elapsed\033[K", done_, steps_, what.c_str(), elapsed);
    std::fflush(stderr);
    drawn_ = true;
  }
  // Ends the progress line, so that what is printed next starts on a line of its own.
  void finish() {
    if (drawn_) std::fputs("\n", stderr);
    drawn_ = false;
  }
  ~Progress() { finish(); }
  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }

 private:
  std::size_t steps_;
  std::size_t done_ = 0;
  bool tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

Entry make_entry(const std::string& mode, const std::string& pool, unsigned workers, double seconds,
                 const Counts& counts, const Counts& reference, double serial_seconds, std::size_t rows) {
  Entry e;
  e.mode = mode;
  e.pool = pool;
  e.workers = workers;
  e.seconds = seconds;
  e.per_task_us = seconds / static_cast<double>(rows) * 1e6;
  e.speedup = serial_seconds > 0 && seconds > 0 ? serial_seconds / seconds : 1.0;
  e.first10.assign(counts.begin(),
                   counts.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(10, counts.size())));
  e.total = std::accumulate(counts.begin(), counts.end(), 0LL);
  e.ok = counts == reference;
  return e;
}

// Every mode on one pool of the given kind, started here, outside every mode's timing.
std::vector<ModeRun> run_pool(const std::string& kind, const Options& o, const Matrix& m,
                              const std::vector<std::string>& modes, unsigned& workers, Progress& progress) {
  auto step = [&](const std::string& mode) { progress.step(mode + " " + kind); };
  if (kind == "process") {
    mproc::Pool pool(o.processes);
    workers = pool.processes();
    return mproc::tool::run_modes(pool, m, modes, o.minimum, o.maximum, step);
  }
  if (kind == "thread") {
    mproc::ThreadPool pool(o.processes);
    workers = pool.processes();
    return mproc::tool::run_modes(pool, m, modes, o.minimum, o.maximum, step);
  }
  return mproc::tool::run_mpi_modes(o.processes_given ? o.processes : 0, workers, m, modes, o.minimum, o.maximum, step);
}

std::string json_list(const Counts& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string json_number(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", x);
  return buf;
}

void print_json(const Options& o, const Matrix& m, const std::vector<Entry>& entries) {
  std::cout << "{\"impl\": \"mproc\", \"rows\": " << m.rows << ", \"cols\": " << m.cols << ", \"low\": " << o.low
            << ", \"high\": " << o.high << ", \"seed\": " << o.seed << ", \"minimum\": " << o.minimum
            << ", \"maximum\": " << o.maximum << ", \"processes\": " << o.processes << ", \"modes\": [";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    std::cout << (i ? ", " : "") << "{\"mode\": \"" << e.mode << "\", \"pool\": \"" << e.pool
              << "\", \"workers\": " << e.workers << ", \"seconds\": " << json_number(e.seconds)
              << ", \"per_task_us\": " << json_number(e.per_task_us) << ", \"speedup\": " << json_number(e.speedup)
              << ", \"first10\": " << json_list(e.first10) << ", \"total\": " << e.total
              << ", \"ok\": " << (e.ok ? "true" : "false") << "}";
  }
  std::cout << "]}\n";
}

void print_report(const Options& o, const Matrix& m, const std::vector<Entry>& entries) {
  if (o.input.empty())
    std::printf("data: %zu x %zu from RandomState(%lld).randint(%lld, %lld); first row %s\n", m.rows, m.cols, o.seed,
                o.low, o.high, json_list(m.data[0]).c_str());
  else
    std::printf("data: %zu x %zu from %s; first row %s\n", m.rows, m.cols, o.input.c_str(),
                json_list(m.data[0]).c_str());
  std::string sizes;
  for (const auto& e : entries)
    if (e.pool != "none" && sizes.find(e.pool + " ") == std::string::npos)
      sizes += (sizes.empty() ? "" : ", ") + e.pool + " " + std::to_string(e.workers);
  std::printf("counting values within [%d, %d]; workers per pool: %s\n\n", o.minimum, o.maximum, sizes.c_str());
  for (const auto& e : entries)
    std::printf("%-15s %-8s %s\n", e.mode.c_str(), e.pool.c_str(), json_list(e.first10).c_str());
  std::printf("\n%-15s %-8s %10s %12s %8s %8s  %s\n", "mode", "pool", "seconds", "per task us", "speedup", "total",
              "ok");
  for (const auto& e : entries)
    std::printf("%-15s %-8s %10.4f %12.3f %7.2fx %8lld  %s\n", e.mode.c_str(), e.pool.c_str(), e.seconds, e.per_task_us,
                e.speedup, e.total, e.ok ? "ok" : "MISMATCH");
}

int demo(const Options& o) {
  validate(o);
  auto modes = parse_modes(o.modes);
  auto pools = parse_pools(o.pool);
  mproc::tool::g_minimum = o.minimum;  // before any pool is built, or any rank serves: see g_minimum
  mproc::tool::g_maximum = o.maximum;
  enter_mpi(pools);  // under mpirun, only rank 0 goes past this line

  Matrix m = o.input.empty() ? mproc::tool::random_matrix(static_cast<std::size_t>(o.rows),
                                                          static_cast<std::size_t>(o.cols), o.low, o.high, o.seed)
                             : mproc::tool::load_matrix(o.input);
  if (m.rows == 0) throw std::runtime_error(o.input + ": no rows");

  Progress progress(1 + (modes.size() - 1) * pools.size());
  std::vector<Entry> entries;
  auto start = std::chrono::steady_clock::now();
  Counts reference = mproc::tool::count_serial(m, o.minimum, o.maximum);
  double serial_seconds = Progress::seconds_since(start);
  entries.push_back(make_entry("serial", "none", 0, serial_seconds, reference, reference, 0, m.rows));
  progress.step("serial");

  // The process pool first (see kPools): it forks its workers before any ThreadPool thread exists.
  for (const auto& kind : pools) {
    unsigned workers = 0;
    for (const ModeRun& run : run_pool(kind, o, m, modes, workers, progress))
      entries.push_back(
          make_entry(run.mode, kind, workers, run.seconds, run.counts, reference, serial_seconds, m.rows));
  }

  progress.finish();
  if (o.json)
    print_json(o, m, entries);
  else
    print_report(o, m, entries);
  bool ok = true;
  for (const auto& e : entries) {
    if (e.ok) continue;
    std::fprintf(stderr, "mproc demo: %s (%s pool) does not match the serial counts\n", e.mode.c_str(), e.pool.c_str());
    ok = false;
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mproc: Python's multiprocessing in C++"};
  app.set_version_flag("--version", std::string("mproc ") + mproc::version());
  app.require_subcommand(1);
  Options o;
  CLI::App* sub =
      app.add_subcommand("demo",
                         "The multiprocessing article's program: count values within a range per row of a random "
                         "matrix, serially and with a pool in each way (bench/article.py in C++).");
  sub->add_option("--rows", o.rows, "matrix rows")->capture_default_str();
  sub->add_option("--cols", o.cols, "matrix columns")->capture_default_str();
  sub->add_option("--low", o.low, "smallest value")->capture_default_str();
  sub->add_option("--high", o.high, "one past the largest value")->capture_default_str();
  sub->add_option("--seed", o.seed, "RandomState seed")->capture_default_str();
  sub->add_option("--min", o.minimum, "range minimum")->capture_default_str();
  sub->add_option("--max", o.maximum, "range maximum")->capture_default_str();
  CLI::Option* processes =
      sub->add_option("--processes", o.processes,
                      "workers in each pool (default: the CPUs this process may use; for mpi, every worker rank)")
          ->capture_default_str();
  sub->add_option("--modes", o.modes, "comma-separated modes (default: all; serial always runs)");
  sub->add_option("--pool", o.pool,
                  "process, thread, mpi (under mpirun), or a comma-separated list; all: process and thread, "
                  "and mpi when launched by mpirun")
      ->capture_default_str();
  sub->add_option("--input", o.input, "read the matrix from a CSV or .npy file instead");
  sub->add_flag("--json", o.json, "print one JSON object (bench/article.py's schema) instead of a table");

  try {
    app.parse(argc, argv);
    o.processes_given = processes->count() > 0;
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    return demo(o);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "mproc demo: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mproc demo: %s\n", e.what());
    return 1;
  }
}
