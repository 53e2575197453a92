/// @file
/// progress.hpp: Progress — how far a map, starmap, imap or imap_unordered has got: a one-line
/// bar on stderr (as Python's tqdm draws), or a function called with the counts.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace mproc {

/// Passed as the last argument of map, starmap, imap, imap_unordered and their async forms:
///
///     auto v = pool.map(f, xs, 0, mproc::Progress{});  // a bar on stderr while it is a terminal
///     pool.map(f, xs, 0, mproc::Progress{.on_update = [](std::size_t done, std::size_t total) {}});
/// The count moves as chunks finish, failed and cancelled items included, and reaches the total
/// before the call's results are ready. The bar (done/total, percent, rate, elapsed time and time
/// left; for an input of unknown size the count and the rate) is redrawn at most once per
/// interval and ended with a newline. As tqdm's default, nothing is drawn when stderr is not a
/// terminal, unless force is set. One bar at a time in a process: a call whose bar would cut into
/// another's draws nothing until that one has ended.
/// Thread safety: on_update is called by one thread at a time for a call, on whichever pool
/// thread (or waiting caller, who then collects results) finished the chunk; it must not wait on
/// the pool.
struct Progress {
  /// Called in place of drawing: with the items finished so far and the total (0 while unknown:
  /// an imap over an input of unknown size, until the input ends). The last call has done equal
  /// to the total, once, before the call's results are ready.
  std::function<void(std::size_t done, std::size_t total)> on_update{};
  /// Draw the bar even when stderr is not a terminal (a log file, a pipe).
  bool force = false;
  /// Words before the bar ("rows: 42%|...").
  std::string desc{};
  /// The least time between two redraws, or two calls of on_update (the last one excepted).
  std::chrono::milliseconds interval{100};
};

namespace detail {

/// A call's progress: counts reported by its job, drawn or handed to on_update. Thread-safe.
class ProgressMeter;
/// A meter for a call of total items (nullopt: not known yet); draws the bar at once when it
/// draws one.
[[nodiscard]] std::shared_ptr<ProgressMeter> start_progress(Progress progress, std::optional<std::size_t> total);

}  // namespace detail
}  // namespace mproc
