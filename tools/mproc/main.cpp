// main.cpp: the `mproc` command. `mproc demo` is bench/article.py in C++: the article's matrix,
// counted serially and then with a pool in each of the article's ways, checked and timed. Its
// options, modes, timing rules and --json schema are those written at the top of article.py.
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

#if __has_include(<mproc/thread_pool.hpp>)
#include <mproc/thread_pool.hpp>
#define MPROC_DEMO_THREAD_POOL 1
#else
#define MPROC_DEMO_THREAD_POOL 0
#endif

#include "matrix.hpp"

namespace {

using mproc::tool::howmany_within_range;
using mproc::tool::Matrix;
using Row = std::vector<int>;
using Counts = std::vector<int>;
using Indexed = std::pair<std::int64_t, int>;  // (row index, count)

const std::vector<std::string> kModes = {"serial",        "apply",     "map",
                                         "starmap",       "apply_async", "starmap_async",
                                         "map_async",     "imap",      "imap_unordered"};

// The bounds for the row-only functions (map, map_async, imap, imap_unordered). A Pool's
// functions cannot capture, so where Python uses functools.partial these read globals instead.
// main() sets them BEFORE any pool is built: forked workers inherit the values at fork time, and
// a value set afterwards would exist only in this process.
int g_minimum = 4;
int g_maximum = 8;

// --- the article's task functions: plain functions, so that their address can reach a worker ---

int count_row(const Row& row) { return howmany_within_range(row, g_minimum, g_maximum); }

int count_args(const Row& row, int minimum, int maximum) {
  return howmany_within_range(row, minimum, maximum);
}

Indexed count_indexed(std::int64_t i, const Row& row, int minimum, int maximum) {
  return {i, howmany_within_range(row, minimum, maximum)};
}

Indexed count_enumerated(const std::pair<std::int64_t, Row>& item) {
  return {item.first, howmany_within_range(item.second, g_minimum, g_maximum)};
}

Counts counts_of(std::vector<Indexed> results) {
  std::sort(results.begin(), results.end(),
            [](const Indexed& a, const Indexed& b) { return a.first < b.first; });
  Counts counts;
  counts.reserve(results.size());
  for (const auto& r : results) counts.push_back(r.second);
  return counts;
}

// --- the modes: each returns the counts in row order -------------------------------------------

template <class P>
Counts run_mode(const std::string& mode, P& pool, const Matrix& m, int mn, int mx) {
  const auto& data = m.data;
  if (mode == "apply") {
    Counts counts;
    counts.reserve(data.size());
    for (const auto& row : data) counts.push_back(pool.apply(count_args, std::tuple{row, mn, mx}));
    return counts;
  }
  if (mode == "map") return pool.map(count_row, data);
  if (mode == "starmap") {
    std::vector<std::tuple<Row, int, int>> args;
    args.reserve(data.size());
    for (const auto& row : data) args.emplace_back(row, mn, mx);
    return pool.starmap(count_args, args);
  }
  if (mode == "apply_async") {
    std::vector<Indexed> results;
    results.reserve(data.size());
    std::mutex mu;  // guards results; callbacks run on a pool thread
    auto collect = [&](const Indexed& r) {
      std::lock_guard lock(mu);
      results.push_back(r);
    };
    std::vector<mproc::AsyncResult<Indexed>> pending;
    pending.reserve(data.size());
    for (std::size_t i = 0; i < data.size(); ++i)
      pending.push_back(pool.apply_async(
          count_indexed, std::tuple{static_cast<std::int64_t>(i), data[i], mn, mx}, collect));
    for (const auto& r : pending) r.wait();  // the callback has run when wait() returns
    std::lock_guard lock(mu);
    return counts_of(std::move(results));
  }
  if (mode == "starmap_async") {
    std::vector<std::tuple<std::int64_t, Row, int, int>> args;
    args.reserve(data.size());
    for (std::size_t i = 0; i < data.size(); ++i)
      args.emplace_back(static_cast<std::int64_t>(i), data[i], mn, mx);
    auto results = pool.starmap_async(count_indexed, args).get();
    Counts counts;
    counts.reserve(results.size());
    for (const auto& r : results) counts.push_back(r.second);
    return counts;
  }
  if (mode == "map_async") return pool.map_async(count_row, data).get();
  if (mode == "imap") {
    Counts counts;
    counts.reserve(data.size());
    for (int c : pool.imap(count_row, data)) counts.push_back(c);
    return counts;
  }
  if (mode == "imap_unordered") {
    std::vector<std::pair<std::int64_t, Row>> items;
    items.reserve(data.size());
    for (std::size_t i = 0; i < data.size(); ++i) items.emplace_back(static_cast<std::int64_t>(i), data[i]);
    std::vector<Indexed> results;
    results.reserve(data.size());
    for (const Indexed& r : pool.imap_unordered(count_enumerated, items)) results.push_back(r);
    return counts_of(std::move(results));
  }
  throw std::logic_error("unknown mode " + mode);
}

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
  std::string modes;
  std::string pool = MPROC_DEMO_THREAD_POOL ? "all" : "process";
  std::string input;
  bool json = false;
};

struct Entry {
  std::string mode;
  std::string pool;
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
      throw UsageError("unknown mode '" + m + "'; choose from serial, apply, map, starmap, apply_async, "
                       "starmap_async, map_async, imap, imap_unordered");
    wanted.push_back(m);
  }
  std::vector<std::string> modes{"serial"};  // always first: the reference
  for (const auto& name : kModes)
    if (name != "serial" && (list.empty() || std::find(wanted.begin(), wanted.end(), name) != wanted.end()))
      modes.push_back(name);
  return modes;
}

std::vector<std::string> parse_pools(const std::string& pool) {
  if (pool == "process") return {"process"};
#if MPROC_DEMO_THREAD_POOL
  if (pool == "thread") return {"thread"};
  if (pool == "all") return {"process", "thread"};
  throw UsageError("--pool must be process, thread or all, not '" + pool + "'");
#else
  throw UsageError("--pool must be process (this build has no ThreadPool), not '" + pool + "'");
#endif
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
    std::fprintf(stderr, "\rmproc demo: %zu/%zu done (%s), %.1f s elapsed\033[K", done_, steps_,
                 what.c_str(), elapsed);
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

Entry make_entry(const std::string& mode, const std::string& pool, double seconds, const Counts& counts,
                 const Counts& reference, double serial_seconds, std::size_t rows) {
  Entry e;
  e.mode = mode;
  e.pool = pool;
  e.seconds = seconds;
  e.per_task_us = seconds / static_cast<double>(rows) * 1e6;
  e.speedup = serial_seconds > 0 && seconds > 0 ? serial_seconds / seconds : 1.0;
  e.first10.assign(counts.begin(), counts.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(10, counts.size())));
  e.total = std::accumulate(counts.begin(), counts.end(), 0LL);
  e.ok = counts == reference;
  return e;
}

template <class P>
void run_pool(const std::string& kind, const Options& o, const Matrix& m, const std::vector<std::string>& modes,
              const Counts& reference, double serial_seconds, std::vector<Entry>& entries, Progress& progress) {
  P pool(o.processes);  // started here, outside every mode's timing
  for (const auto& mode : modes) {
    if (mode == "serial") continue;
    auto start = std::chrono::steady_clock::now();
    Counts counts = run_mode(mode, pool, m, o.minimum, o.maximum);
    double seconds = Progress::seconds_since(start);
    entries.push_back(make_entry(mode, kind, seconds, counts, reference, serial_seconds, m.rows));
    progress.step(mode + " " + kind);
  }
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
              << "\", \"seconds\": " << json_number(e.seconds) << ", \"per_task_us\": " << json_number(e.per_task_us)
              << ", \"speedup\": " << json_number(e.speedup) << ", \"first10\": " << json_list(e.first10)
              << ", \"total\": " << e.total << ", \"ok\": " << (e.ok ? "true" : "false") << "}";
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
  std::printf("counting values within [%d, %d]; pools of %d workers\n\n", o.minimum, o.maximum, o.processes);
  for (const auto& e : entries)
    std::printf("%-15s %-8s %s\n", e.mode.c_str(), e.pool.c_str(), json_list(e.first10).c_str());
  std::printf("\n%-15s %-8s %10s %12s %8s %8s  %s\n", "mode", "pool", "seconds", "per task us", "speedup", "total",
              "ok");
  for (const auto& e : entries)
    std::printf("%-15s %-8s %10.4f %12.3f %7.2fx %8lld  %s\n", e.mode.c_str(), e.pool.c_str(), e.seconds,
                e.per_task_us, e.speedup, e.total, e.ok ? "ok" : "MISMATCH");
}

int demo(const Options& o) {
  validate(o);
  auto modes = parse_modes(o.modes);
  auto pools = parse_pools(o.pool);
  Matrix m = o.input.empty()
                 ? mproc::tool::random_matrix(static_cast<std::size_t>(o.rows), static_cast<std::size_t>(o.cols),
                                              o.low, o.high, o.seed)
                 : mproc::tool::load_matrix(o.input);
  if (m.rows == 0) throw std::runtime_error(o.input + ": no rows");

  g_minimum = o.minimum;  // before any pool is built: see g_minimum
  g_maximum = o.maximum;

  Progress progress(1 + (modes.size() - 1) * pools.size());
  std::vector<Entry> entries;
  auto start = std::chrono::steady_clock::now();
  Counts reference = mproc::tool::count_serial(m, o.minimum, o.maximum);
  double serial_seconds = Progress::seconds_since(start);
  entries.push_back(make_entry("serial", "none", serial_seconds, reference, reference, 0, m.rows));
  progress.step("serial");

  // The process pool first: it forks its workers before any ThreadPool thread exists.
  for (const auto& kind : pools) {
    if (kind == "process")
      run_pool<mproc::Pool>(kind, o, m, modes, reference, serial_seconds, entries, progress);
#if MPROC_DEMO_THREAD_POOL
    else
      run_pool<mproc::ThreadPool>(kind, o, m, modes, reference, serial_seconds, entries, progress);
#endif
  }

  progress.finish();
  if (o.json)
    print_json(o, m, entries);
  else
    print_report(o, m, entries);
  bool ok = true;
  for (const auto& e : entries) {
    if (e.ok) continue;
    std::fprintf(stderr, "mproc demo: %s (%s pool) does not match the serial counts\n", e.mode.c_str(),
                 e.pool.c_str());
    ok = false;
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mproc: Python's multiprocessing in C++"};
  app.require_subcommand(1);
  Options o;
  CLI::App* sub = app.add_subcommand(
      "demo", "The multiprocessing article's program: count values within a range per row of a random "
              "matrix, serially and with a pool in each way (bench/article.py in C++).");
  sub->add_option("--rows", o.rows, "matrix rows")->capture_default_str();
  sub->add_option("--cols", o.cols, "matrix columns")->capture_default_str();
  sub->add_option("--low", o.low, "smallest value")->capture_default_str();
  sub->add_option("--high", o.high, "one past the largest value")->capture_default_str();
  sub->add_option("--seed", o.seed, "RandomState seed")->capture_default_str();
  sub->add_option("--min", o.minimum, "range minimum")->capture_default_str();
  sub->add_option("--max", o.maximum, "range maximum")->capture_default_str();
  sub->add_option("--processes", o.processes, "workers in each pool")->capture_default_str();
  sub->add_option("--modes", o.modes, "comma-separated modes (default: all; serial always runs)");
  sub->add_option("--pool", o.pool, "process, thread or all")->capture_default_str();
  sub->add_option("--input", o.input, "read the matrix from a CSV or .npy file instead");
  sub->add_flag("--json", o.json, "print one JSON object (bench/article.py's schema) instead of a table");

  try {
    app.parse(argc, argv);
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
