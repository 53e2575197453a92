// main.cpp: the `mproc` command. `mproc demo` is bench/article.py in C++: the article's matrix,
// counted serially and then with a pool in each of the article's ways, checked and timed. Its
// options, modes, timing rules and --json schema are those written at the top of article.py.
// The modes themselves are in demo.hpp; --pool mpi (demo_mpi.cpp) runs them on an MpiPool under
// mpirun. `mproc timeline` draws a trace (pool.write_trace) as an SVG chart: timeline.hpp.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
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
#include <nlohmann/json.hpp>

#include "demo.hpp"
#include "matrix.hpp"
#include "python_compare.hpp"
#include "timeline.hpp"

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
  bool progress = false;            // --progress: the library's bar for each mode
  std::string trace;                // --trace PATH: each pool records insights and writes its trace there
  bool many_pools = false;          // more than one pool: each trace's path names its pool
  std::string rows_in = "vectors";  // --rows-in: vectors, or heap (pmr rows on the shared heap)
  bool compare_python = false;      // --compare-python: bench/article.py's seconds beside ours
  std::string python = "/usr/bin/python3";
};

// Where a pool's trace goes: the --trace path, with the pool's kind before the extension when
// the run has more than one pool (trace.json: trace.process.json, trace.thread.json); empty
// without --trace.
std::string trace_path(const Options& o, const std::string& kind) {
  if (o.trace.empty() || !o.many_pools) return o.trace;
  auto dot = o.trace.rfind('.');
  if (dot == std::string::npos || o.trace.find('/', dot) != std::string::npos) return o.trace + "." + kind;
  return o.trace.substr(0, dot) + "." + kind + o.trace.substr(dot);
}

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
  double python_seconds = -1;  // article.py's for the same mode (--compare-python); < 0: none
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
  if (o.rows_in != "heap" && o.rows_in != "vectors")
    throw UsageError("--rows-in must be heap or vectors, not '" + o.rows_in + "'");
}

// Progress on stderr, only when it is a terminal and the run has taken more than a second.
class Progress {
 public:
  explicit Progress(std::size_t steps) : steps_(steps), tty_(isatty(STDERR_FILENO) == 1) {}
  void step(const std::string& what) {
    if (steps_ == 0) return;  // none to show: the library draws its own bars (--progress)
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

// The line of map over the heap's rows when the modes run over vectors (--rows-in vectors).
const std::string kMapHeap = "map (heap)";

// Every mode on a started pool, over the rows --rows-in says: the natural port's pmr rows on the
// shared heap, made here, after the pool (outside every mode's timing), or the matrix's vectors.
// Over vectors, map also runs over heap rows, as a line of its own (kMapHeap): in a single cold
// run the heap's rows are not yet faster than copying vectors (see README, "The demo").
template <class P>
std::vector<ModeRun> run_on(P& pool, const std::string& kind, const Options& o, const Matrix& m,
                            const std::vector<std::string>& modes, unsigned& workers,
                            const std::function<void(const std::string&)>& step) {
  workers = pool.processes();
  std::vector<ModeRun> runs;
  if (o.rows_in == "heap") {
    const mproc::tool::HeapRows rows = mproc::tool::heap_rows(m);
    runs = mproc::tool::run_modes(pool, rows, modes, o.minimum, o.maximum, step);
  } else {
    runs = mproc::tool::run_modes(pool, m.data, modes, o.minimum, o.maximum, step);
    if (std::find(modes.begin(), modes.end(), "map") != modes.end()) {
      const mproc::tool::HeapRows rows = mproc::tool::heap_rows(m);
      ModeRun heap =
          mproc::tool::run_modes(pool, rows, {"map"}, o.minimum, o.maximum, [](const std::string&) {}).front();
      heap.mode = kMapHeap;
      auto after_map = std::find_if(runs.begin(), runs.end(), [](const ModeRun& r) { return r.mode == "map"; });
      runs.insert(after_map + 1, std::move(heap));
    }
  }
  mproc::tool::write_trace(pool, trace_path(o, kind), kind);
  return runs;
}

// Every mode on one pool of the given kind, started here, outside every mode's timing.
std::vector<ModeRun> run_pool(const std::string& kind, const Options& o, const Matrix& m,
                              const std::vector<std::string>& modes, unsigned& workers, Progress& progress) {
  auto step = [&](const std::string& mode) { progress.step(mode + " " + kind); };
  if (kind == "process") {
    mproc::Pool pool(mproc::PoolOptions{.processes = o.processes, .insights = !o.trace.empty()});
    return run_on(pool, kind, o, m, modes, workers, step);
  }
  if (kind == "thread") {
    mproc::ThreadPool pool(mproc::PoolOptions{.processes = o.processes, .insights = !o.trace.empty()});
    return run_on(pool, kind, o, m, modes, workers, step);
  }
  return mproc::tool::run_mpi_modes(o.processes_given ? o.processes : 0, workers, m, modes, o.minimum, o.maximum, step,
                                    trace_path(o, kind));
}

std::string json_list(const Counts& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// The schema of article.py's --json (read by bench/compare_python), keys in its order.
void print_json(const Options& o, const Matrix& m, const std::vector<Entry>& entries) {
  using Json = nlohmann::ordered_json;
  Json modes = Json::array();
  for (const Entry& e : entries) {
    modes.push_back({{"mode", e.mode},
                     {"pool", e.pool},
                     {"workers", e.workers},
                     {"seconds", e.seconds},
                     {"per_task_us", e.per_task_us},
                     {"speedup", e.speedup},
                     {"first10", e.first10},
                     {"total", e.total},
                     {"ok", e.ok}});
    if (e.python_seconds >= 0) modes.back()["python_seconds"] = e.python_seconds;
  }
  Json out = {{"impl", "mproc"},          {"rows", m.rows},           {"cols", m.cols},       {"low", o.low},
              {"high", o.high},           {"seed", o.seed},           {"minimum", o.minimum}, {"maximum", o.maximum},
              {"processes", o.processes}, {"modes", std::move(modes)}};
  std::cout << out.dump(2) << "\n";
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
  std::printf("counting values within [%d, %d]; workers per pool: %s; rows %s\n\n", o.minimum, o.maximum, sizes.c_str(),
              o.rows_in == "heap" ? "in pmr vectors on the shared heap"
                                  : "in std::vectors, copied to workers (map (heap): pmr vectors on the shared heap)");
  for (const auto& e : entries)
    std::printf("%-15s %-8s %s\n", e.mode.c_str(), e.pool.c_str(), json_list(e.first10).c_str());
  // --compare-python: Python's seconds for the same mode, and how many times faster ours were.
  const bool python = std::any_of(entries.begin(), entries.end(), [](const Entry& e) { return e.python_seconds >= 0; });
  std::printf("\n%-15s %-8s %10s", "mode", "pool", "seconds");
  if (python) std::printf(" %10s %10s", "python s", "vs python");
  std::printf(" %12s %8s %8s  %s\n", "per task us", "speedup", "total", "ok");
  for (const auto& e : entries) {
    std::printf("%-15s %-8s %10.4f", e.mode.c_str(), e.pool.c_str(), e.seconds);
    if (python && e.python_seconds >= 0)
      std::printf(" %10.4f %9.1fx", e.python_seconds, e.seconds > 0 ? e.python_seconds / e.seconds : 0.0);
    else if (python)
      std::printf(" %10s %10s", "-", "-");
    std::printf(" %12.3f %7.2fx %8lld  %s\n", e.per_task_us, e.speedup, e.total, e.ok ? "ok" : "MISMATCH");
  }
  if (python)
    std::printf(
        "\npython s: bench/article.py (multiprocessing.Pool, %d processes) on the same rows; vs python: "
        "python s / seconds\n",
        o.processes);
}

// --compare-python: article.py on the same data (the same seed and shape, or the same --input
// file), the same modes and workers; its figures by mode.
std::map<std::string, mproc::tool::PythonMode> run_python(const Options& o, const std::vector<std::string>& modes) {
  std::vector<std::string> args;
  if (o.input.empty())
    args = {"--rows", std::to_string(o.rows), "--cols", std::to_string(o.cols), "--low", std::to_string(o.low),
            "--high", std::to_string(o.high), "--seed", std::to_string(o.seed)};
  else
    args = {"--input", o.input};
  std::string list;
  for (const auto& mode : modes) list += (list.empty() ? "" : ",") + mode;
  args.insert(args.end(), {"--min", std::to_string(o.minimum), "--max", std::to_string(o.maximum), "--processes",
                           std::to_string(o.processes), "--modes", list});
  return mproc::tool::run_article_py(o.python, MPROC_ARTICLE_PY, args);
}

// Python's seconds beside each of our entries of the same mode; false (and why, on stderr) when
// Python's counts differ from ours: then the two did not count the same data.
bool add_python(std::vector<Entry>& entries, const std::map<std::string, mproc::tool::PythonMode>& python) {
  bool same = true;
  for (Entry& e : entries) {
    auto it = python.find(e.mode == kMapHeap ? "map" : e.mode);
    if (it == python.end()) continue;
    e.python_seconds = it->second.seconds;
    if (it->second.total != entries.front().total || !it->second.ok) {
      std::fprintf(stderr, "mproc demo: article.py's %s counts (total %lld%s) differ from ours (total %lld)\n",
                   e.mode.c_str(), it->second.total, it->second.ok ? "" : ", not ok", entries.front().total);
      same = false;
    }
  }
  return same;
}

int demo(const Options& o) {
  validate(o);
  auto modes = parse_modes(o.modes);
  auto pools = parse_pools(o.pool);
  Options traced = o;  // --trace: with the number of pools, which names the trace files
  traced.many_pools = pools.size() > 1;
  enter_mpi(pools);  // under mpirun, only rank 0 goes past this line
  if (o.compare_python) mproc::tool::check_python(o.python, MPROC_ARTICLE_PY);

  Matrix m = o.input.empty() ? mproc::tool::random_matrix(static_cast<std::size_t>(o.rows),
                                                          static_cast<std::size_t>(o.cols), o.low, o.high, o.seed)
                             : mproc::tool::load_matrix(o.input);
  if (m.rows == 0) throw std::runtime_error(o.input + ": no rows");

  // Python first: nothing of ours runs meanwhile, and no pool of ours exists when it forks.
  std::map<std::string, mproc::tool::PythonMode> python;
  if (o.compare_python) python = run_python(o, modes);

  // --progress: the library's bars instead of the demo's own step counter.
  Progress progress(o.progress ? 0 : 1 + (modes.size() - 1) * pools.size());
  const mproc::Progress bar{};
  if (o.progress) mproc::tool::g_progress = &bar;
  std::vector<Entry> entries;
  auto start = std::chrono::steady_clock::now();
  Counts reference = mproc::tool::count_serial(m, o.minimum, o.maximum);
  double serial_seconds = Progress::seconds_since(start);
  entries.push_back(make_entry("serial", "none", 0, serial_seconds, reference, reference, 0, m.rows));
  progress.step("serial");

  // The process pool first (see kPools): it forks its workers before any ThreadPool thread exists.
  for (const auto& kind : pools) {
    unsigned workers = 0;
    for (const ModeRun& run : run_pool(kind, traced, m, modes, workers, progress))
      entries.push_back(
          make_entry(run.mode, kind, workers, run.seconds, run.counts, reference, serial_seconds, m.rows));
  }

  progress.finish();
  bool ok = add_python(entries, python);
  if (o.json)
    print_json(o, m, entries);
  else
    print_report(o, m, entries);
  for (const auto& e : entries) {
    if (e.ok) continue;
    std::fprintf(stderr, "mproc demo: %s (%s pool) does not match the serial counts\n", e.mode.c_str(), e.pool.c_str());
    ok = false;
  }
  return ok ? 0 : 1;
}

// --- mproc timeline -----------------------------------------------------------------------------

struct TimelineArgs {
  std::string trace;
  std::string output;  // "-": standard output
  double width = 1200;
};

void write_output(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text << std::flush;
    if (!std::cout) throw std::runtime_error("cannot write the SVG to standard output");
    return;
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  int saved = errno;
  if (std::fclose(f) != 0 && written) {
    saved = errno;
    written = false;
  }
  if (!written) throw std::runtime_error("cannot write " + path + ": " + std::strerror(saved));
}

int timeline(const TimelineArgs& a) {
  mproc::tool::Trace trace = mproc::tool::read_trace(a.trace);
  mproc::tool::TimelineStats stats;
  std::string svg = mproc::tool::render_timeline(trace, {.width = a.width}, &stats);
  write_output(a.output, svg);
  // The summary goes where the SVG does not.
  std::fprintf(a.output == "-" ? stderr : stdout,
               "mproc timeline: wrote %s: %zu lanes, %zu slices drawn as %zu bars, %zu worker events\n",
               a.output.c_str(), stats.lanes, stats.slices, stats.bars, stats.instants);
  return 0;
}

CLI::App* add_timeline(CLI::App& app, TimelineArgs& a) {
  CLI::App* sub = app.add_subcommand(
      "timeline",
      "Draw a trace (pool.write_trace, or `mproc demo --trace`) as an SVG chart: a lane per worker, chunks as "
      "bars coloured by call, idle gaps, worker deaths; open it in a browser.");
  sub->add_option("trace", a.trace, "the trace: Chrome trace event JSON")->required();
  sub->add_option("-o,--output", a.output, "the SVG file to write (-: standard output)")->required();
  sub->add_option("--width", a.width, "the chart's width in pixels")
      ->check(CLI::Range(400.0, 20000.0))
      ->capture_default_str();
  return sub;
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
  sub->add_flag("--progress", o.progress, "draw the library's progress bar (mproc::Progress) for each mode's call");
  sub->add_option("--rows-in", o.rows_in,
                  "where the pools' rows live: vectors (std::vector rows, copied to the workers; map also runs "
                  "over heap rows, as the line 'map (heap)'), or heap (every mode over pmr vectors on the shared "
                  "heap, which a process Pool's map and starmap read in place)")
      ->capture_default_str();
  sub->add_flag("--compare-python", o.compare_python,
                "also run bench/article.py (Python's multiprocessing.Pool, numpy needed) on the same data, and show "
                "its seconds for each mode beside ours");
  sub->add_option("--python", o.python, "the Python with numpy that --compare-python runs")->capture_default_str();
  sub->add_option("--trace", o.trace,
                  "record insights and write each pool's Chrome trace (Perfetto) to this path; with several "
                  "pools, the pool's kind goes before the extension");

  TimelineArgs timeline_args;
  CLI::App* timeline_command = add_timeline(app, timeline_args);

  try {
    app.parse(argc, argv);
    o.processes_given = processes->count() > 0;
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  bool drawing = app.got_subcommand(timeline_command);
  const char* name = drawing ? "mproc timeline" : "mproc demo";
  try {
    return drawing ? timeline(timeline_args) : demo(o);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}
