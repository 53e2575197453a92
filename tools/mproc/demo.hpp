// demo.hpp: what `mproc demo` runs in a pool — the article's task functions, each of its modes
// (run_mode) and all of them on one pool (run_modes) — shared by main.cpp (Pool, ThreadPool)
// and demo_mpi.cpp (MpiPool); and the MPI entry points, which demo_mpi.cpp defines where MPI was
// found and demo_no_mpi.cpp where it was not.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <mproc/async_result.hpp>

#include "matrix.hpp"

namespace mproc::tool {

using Row = std::vector<int>;
using Counts = std::vector<int>;
using Indexed = std::pair<std::int64_t, int>;  // (row index, count)

// The bounds for the row-only functions (map, map_async, imap, imap_unordered). A Pool's
// functions cannot capture, so where Python uses functools.partial these read globals instead.
// main() sets them BEFORE any pool is built: forked workers inherit the values at fork time, MPI
// worker ranks set them from the same command line before they start serving, and a value set
// afterwards would exist only in this process.
inline int g_minimum = 4;
inline int g_maximum = 8;

// --- the article's task functions: plain functions, so that their address can reach a worker ---

inline int count_row(const Row& row) { return howmany_within_range(row, g_minimum, g_maximum); }

inline int count_args(const Row& row, int minimum, int maximum) { return howmany_within_range(row, minimum, maximum); }

inline Indexed count_indexed(std::int64_t i, const Row& row, int minimum, int maximum) {
  return {i, howmany_within_range(row, minimum, maximum)};
}

inline Indexed count_enumerated(const std::pair<std::int64_t, Row>& item) {
  return {item.first, howmany_within_range(item.second, g_minimum, g_maximum)};
}

inline Counts counts_of(std::vector<Indexed> results) {
  std::sort(results.begin(), results.end(), [](const Indexed& a, const Indexed& b) { return a.first < b.first; });
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
      pending.push_back(
          pool.apply_async(count_indexed, std::tuple{static_cast<std::int64_t>(i), data[i], mn, mx}, collect));
    for (const auto& r : pending) r.wait();  // the callback has run when wait() returns
    std::lock_guard lock(mu);
    return counts_of(std::move(results));
  }
  if (mode == "starmap_async") {
    std::vector<std::tuple<std::int64_t, Row, int, int>> args;
    args.reserve(data.size());
    for (std::size_t i = 0; i < data.size(); ++i) args.emplace_back(static_cast<std::int64_t>(i), data[i], mn, mx);
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

// One mode's outcome on one pool.
struct ModeRun {
  std::string mode;
  double seconds = 0;  // wall time of run_mode, as article.py's TIMING says
  Counts counts;
};

// Every mode but serial on pool, in order; step(mode) after each (for progress).
template <class P>
std::vector<ModeRun> run_modes(P& pool, const Matrix& m, const std::vector<std::string>& modes, int mn, int mx,
                               const std::function<void(const std::string&)>& step) {
  std::vector<ModeRun> runs;
  for (const auto& mode : modes) {
    if (mode == "serial") continue;
    auto start = std::chrono::steady_clock::now();
    Counts counts = run_mode(mode, pool, m, mn, mx);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    runs.push_back({mode, seconds, std::move(counts)});
    step(mode);
  }
  return runs;
}

// --- MPI: demo_mpi.cpp, or demo_no_mpi.cpp in a build without MPI -------------------------------

// Whether this build has MpiPool.
[[nodiscard]] bool mpi_built() noexcept;
// Starts MPI; on a worker rank, serves MpiPools and ends the process when rank 0 is done: it
// returns only on rank 0. Returns the job's size (1 when not launched by mpirun).
int mpi_start();
// Runs modes on an MpiPool of `processes` worker ranks (0: all of them); workers gets its size.
std::vector<ModeRun> run_mpi_modes(int processes, unsigned& workers, const Matrix& m,
                                   const std::vector<std::string>& modes, int mn, int mx,
                                   const std::function<void(const std::string&)>& step);

}  // namespace mproc::tool
