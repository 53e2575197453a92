// watch.hpp: Watcher — the thread that watches a process pool's workers. It reaps each worker
// that exits, fails the chunk it was running (WorkerLost, or TimeoutError when it was killed for
// its time limit), sends the chunks it had not started to the others, and replaces it; it kills
// workers past their chunk's time limit, and new workers stuck at birth. It also takes back the
// chunks queued on a worker that stalls (a long task, stopped, stuck) for the idle ones: the
// parent revokes them through SlotShared::claim, which the worker claims each chunk through
// (claim_chunk) before running it, so each such chunk runs exactly once, there or elsewhere.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <optional>
#include <vector>

#include "backend/process/collect.hpp"
#include "backend/process/dispatch.hpp"
#include "backend/process/layout.hpp"
#include "backend/process/slot.hpp"
#include "mproc/detail/chunk_book.hpp"
#include "mproc/pool_options.hpp"
#include "os/os.hpp"

namespace mproc::detail {

class Watcher {
 public:
  Watcher(const Slots& slots, PoolState& state, ChunkBook& book, Dispatcher& dispatcher, Spawner& spawner,
          Collector& collector, const PoolOptions& options);

  // The watcher thread's loop; returns after stop().
  void run();
  void stop() noexcept;
  void wake() noexcept;
  // Forks a worker into slot; under PoolState::mu, or before the threads start.
  void spawn(Slot& slot);
  // A call has its own time limit: from now on, time limits are checked. Under PoolState::mu.
  void limit_tasks();
  // When a worker is idle, takes back the chunks queued on a worker that has not moved for a
  // while, for the idle ones. Under PoolState::mu.
  void rescue_stalled();
  // Starts and deaths are recorded there (PoolOptions::insights); set before any worker starts.
  void set_insights(InsightsRecorder* insights) noexcept { insights_ = insights; }

 private:
  void on_exit(Slot& slot);
  // A MemoryLimitError for the chunk seq a worker lost, if it ran out of memory, from what it left
  // (MemoryLimiter::remains_of); removes its group. Outside PoolState::mu: it reads and removes files.
  std::exception_ptr out_of_memory(MemoryLimiter::Remains remains, std::uint64_t seq, pid_t pid,
                                   const os::ExitStatus& status, int attempts);
  void record_exit(unsigned lane, pid_t pid, const os::ExitStatus& status, bool timed_out);  // under PoolState::mu
  // A chunk's time limit once started (0: none) and the times it may run again when lost: its
  // call's, else the pool's.
  [[nodiscard]] std::int64_t limit_ns(const Record& record) const;
  [[nodiscard]] int retries(const Record& record) const;
  std::optional<os::Nanos> enforce_time_limits();  // kills overdue workers; returns the next check
  std::optional<os::Nanos> check_stalls();         // rescue_stalled() and more; returns the next check
  void revoke(Slot& slot);                         // under PoolState::mu
  // Stamps the workers whose progress since the last look is unstamped (a result came, or work
  // was given to them idle: Dispatcher reads no clock for it): from when the worker started the
  // chunk it runs now, or, when it has not started what it was given yet, from now. Under
  // PoolState::mu.
  void stamp_progress(std::int64_t now);
  // When no worker is left: the pool is broken, and the queued chunks can never run.
  std::vector<Record> fail_if_no_workers();  // under PoolState::mu

  const Slots& slots_;
  PoolState& state_;
  ChunkBook& book_;  // under PoolState::mu
  Dispatcher& dispatcher_;
  Spawner& spawner_;
  Collector& collector_;
  const PoolOptions& options_;
  os::Fd wake_read_, wake_write_;
  std::atomic<bool> stop_{false};
  InsightsRecorder* insights_ = nullptr;
  bool per_call_limits_ = false;  // a call has had its own TaskTimeout; guarded by PoolState::mu
};

}  // namespace mproc::detail
