// demo.hpp: what `mproc demo` runs in a pool — the article's task functions, each of its modes
// (run_mode) and all of them on one pool (run_modes) — shared by main.cpp (Pool, ThreadPool)
// and demo_mpi.cpp (MpiPool); and the MPI entry points, which demo_mpi.cpp defines where MPI was
// found and demo_no_mpi.cpp where it was not.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory_resource>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <mproc/async_result.hpp>
#include <mproc/bind.hpp>
#include <mproc/progress.hpp>
#include <mproc/shared_heap.hpp>

#include "matrix.hpp"

namespace mproc::tool {

using Row = std::vector<int>;
// The natural port's rows: pmr containers on the shared heap (mproc::shared_resource()), which a
// process Pool's map, starmap and their async forms read in place instead of copying.
using HeapRow = std::pmr::vector<int>;
using HeapRows = std::pmr::vector<HeapRow>;
using Counts = std::vector<int>;
using Indexed = std::pair<std::int64_t, int>;  // (row index, count)

// The matrix's rows copied into the shared heap.
inline HeapRows heap_rows(const Matrix& m) {
  HeapRows rows(mproc::shared_resource());
  rows.reserve(m.data.size());
  for (const Row& row : m.data) rows.emplace_back(row.begin(), row.end());
  return rows;
}

// --- the article's task functions: plain functions, so that their address can reach a worker ---
// Each for a row R of either kind (Row, HeapRow). Where Python binds the bounds with
// functools.partial (map, map_async, imap, imap_unordered), these are called through
// mproc::bind_back(f, mn, mx): the bounds travel with the tasks.

// howmany_within_range for either kind of row.
template <class R>
int count_within(const R& row, int minimum, int maximum) {
  return static_cast<int>(std::count_if(row.begin(), row.end(), [=](int v) { return minimum <= v && v <= maximum; }));
}

template <class R>
int count_args(const R& row, int minimum, int maximum) {
  return count_within(row, minimum, maximum);
}

template <class R>
Indexed count_indexed(std::int64_t i, const R& row, int minimum, int maximum) {
  return {i, count_within(row, minimum, maximum)};
}

template <class R>
Indexed count_enumerated(const std::pair<std::int64_t, R>& item, int minimum, int maximum) {
  return {item.first, count_within(item.second, minimum, maximum)};
}

inline Counts counts_of(std::vector<Indexed> results) {
  std::sort(results.begin(), results.end(), [](const Indexed& a, const Indexed& b) { return a.first < b.first; });
  Counts counts;
  counts.reserve(results.size());
  for (const auto& r : results) counts.push_back(r.second);
  return counts;
}

// An empty list of T where rows live: a std::vector beside vectors, a pmr vector on the heap
// beside heap rows (its elements' rows are then built there too, so a map reads them in place).
template <class T>
std::vector<T> list_like(const std::vector<Row>&) {
  return {};
}
template <class T>
std::pmr::vector<T> list_like(const HeapRows& rows) {
  return std::pmr::vector<T>(rows.get_allocator());
}

// starmap's arguments, (row, mn, mx) for each row, as Python's [(row, mn, mx) for row in data].
template <class Rows>
auto star_args(const Rows& data, int mn, int mx) {
  auto args = list_like<std::tuple<typename Rows::value_type, int, int>>(data);
  args.reserve(data.size());
  for (const auto& row : data) args.emplace_back(row, mn, mx);
  return args;
}

// starmap_async's arguments, (i, row, mn, mx), and imap_unordered's items, (i, row).
template <class Rows>
auto indexed_args(const Rows& data, int mn, int mx) {
  auto args = list_like<std::tuple<std::int64_t, typename Rows::value_type, int, int>>(data);
  args.reserve(data.size());
  for (std::size_t i = 0; i < data.size(); ++i) args.emplace_back(static_cast<std::int64_t>(i), data[i], mn, mx);
  return args;
}
template <class Rows>
auto enumerated(const Rows& data) {
  auto items = list_like<std::pair<std::int64_t, typename Rows::value_type>>(data);
  items.reserve(data.size());
  for (std::size_t i = 0; i < data.size(); ++i) items.emplace_back(static_cast<std::int64_t>(i), data[i]);
  return items;
}

// --- the modes: each returns the counts in row order -------------------------------------------

// --progress: the library's bar for each call that takes one (null: none).
inline const mproc::Progress* g_progress = nullptr;

// The bar of one mode's call, named for it.
inline mproc::Progress progress_for(const std::string& mode) {
  mproc::Progress p = *g_progress;
  p.desc = mode;
  return p;
}

// run_mode with the library's bar (--progress): the modes whose calls take a Progress. Returns
// false for the others (apply, apply_async), which run_mode then runs without one.
template <class P, class Rows>
bool run_mode_with_progress(const std::string& mode, P& pool, const Rows& data, int mn, int mx, Counts& out) {
  using R = typename Rows::value_type;
  if (mode == "map") {
    out = pool.map(mproc::bind_back(count_args<R>, mn, mx), data, 0, progress_for(mode));
  } else if (mode == "map_async") {
    out = pool.map_async(mproc::bind_back(count_args<R>, mn, mx), data, 0, {}, {}, progress_for(mode)).get();
  } else if (mode == "starmap" || mode == "starmap_async") {
    auto args = star_args(data, mn, mx);
    out = mode == "starmap" ? pool.starmap(count_args<R>, args, 0, progress_for(mode))
                            : pool.starmap_async(count_args<R>, args, 0, {}, {}, progress_for(mode)).get();
  } else if (mode == "imap") {
    out.clear();
    for (int c : pool.imap(mproc::bind_back(count_args<R>, mn, mx), data, 1, progress_for(mode))) out.push_back(c);
  } else if (mode == "imap_unordered") {
    auto items = enumerated(data);
    std::vector<Indexed> results;
    results.reserve(data.size());
    for (const Indexed& r :
         pool.imap_unordered(mproc::bind_back(count_enumerated<R>, mn, mx), items, 1, progress_for(mode)))
      results.push_back(r);
    out = counts_of(std::move(results));
  } else {
    return false;
  }
  return true;
}

// One mode on pool over data: rows of either kind (std::vector<Row>, HeapRows).
template <class P, class Rows>
Counts run_mode(const std::string& mode, P& pool, const Rows& data, int mn, int mx) {
  using R = typename Rows::value_type;
  if (Counts counts; g_progress && run_mode_with_progress(mode, pool, data, mn, mx, counts)) return counts;
  if (mode == "apply") {
    Counts counts;
    counts.reserve(data.size());
    for (const auto& row : data) counts.push_back(pool.apply(count_args<R>, std::tuple{row, mn, mx}));
    return counts;
  }
  if (mode == "map") return pool.map(mproc::bind_back(count_args<R>, mn, mx), data);
  if (mode == "starmap") {
    auto args = star_args(data, mn, mx);
    return pool.starmap(count_args<R>, args);
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
          pool.apply_async(count_indexed<R>, std::tuple{static_cast<std::int64_t>(i), data[i], mn, mx}, collect));
    for (const auto& r : pending) r.wait();  // the callback has run when wait() returns
    std::lock_guard lock(mu);
    return counts_of(std::move(results));
  }
  if (mode == "starmap_async") {
    auto args = indexed_args(data, mn, mx);
    auto results = pool.starmap_async(count_indexed<R>, args).get();
    Counts counts;
    counts.reserve(results.size());
    for (const auto& r : results) counts.push_back(r.second);
    return counts;
  }
  if (mode == "map_async") return pool.map_async(mproc::bind_back(count_args<R>, mn, mx), data).get();
  if (mode == "imap") {
    Counts counts;
    counts.reserve(data.size());
    for (int c : pool.imap(mproc::bind_back(count_args<R>, mn, mx), data)) counts.push_back(c);
    return counts;
  }
  if (mode == "imap_unordered") {
    auto items = enumerated(data);
    std::vector<Indexed> results;
    results.reserve(data.size());
    for (const Indexed& r : pool.imap_unordered(mproc::bind_back(count_enumerated<R>, mn, mx), items))
      results.push_back(r);
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
template <class P, class Rows>
std::vector<ModeRun> run_modes(P& pool, const Rows& data, const std::vector<std::string>& modes, int mn, int mx,
                               const std::function<void(const std::string&)>& step) {
  std::vector<ModeRun> runs;
  for (const auto& mode : modes) {
    if (mode == "serial") continue;
    auto start = std::chrono::steady_clock::now();
    Counts counts = run_mode(mode, pool, data, mn, mx);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    runs.push_back({mode, seconds, std::move(counts)});
    step(mode);
  }
  return runs;
}

// --trace: pool's trace written to path, and its insights printed on stderr; nothing when path is
// empty. kind names the pool in the message.
template <class P>
void write_trace(P& pool, const std::string& path, const std::string& kind) {
  if (path.empty()) return;
  pool.write_trace(path);
  std::cerr << pool.insights() << "mproc demo: wrote the trace of the " << kind << " pool to " << path << '\n';
}

// --- MPI: demo_mpi.cpp, or demo_no_mpi.cpp in a build without MPI -------------------------------

// Whether this build has MpiPool.
[[nodiscard]] bool mpi_built() noexcept;
// Starts MPI; on a worker rank, serves MpiPools and ends the process when rank 0 is done: it
// returns only on rank 0. Returns the job's size (1 when not launched by mpirun).
int mpi_start();
// Runs modes on an MpiPool of `processes` worker ranks (0: all of them); workers gets its size.
// trace: where its trace goes (write_trace), recording insights; empty: none.
std::vector<ModeRun> run_mpi_modes(int processes, unsigned& workers, const Matrix& m,
                                   const std::vector<std::string>& modes, int mn, int mx,
                                   const std::function<void(const std::string&)>& step, const std::string& trace);

}  // namespace mproc::tool
