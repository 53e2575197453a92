// pool_core.hpp: ProcessPoolCore — the parent's side of a process pool: the worker slots and
// their shared memory, dispatch of chunks, the result thread, the watcher thread, and the
// collecting protocol that lets a waiting caller read results itself.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/process/layout.hpp"
#include "backend/process/slot.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/pool_options.hpp"
#include "os/os.hpp"

namespace mproc::detail {

class ProcessPoolCore final : public JobHost {
 public:
  explicit ProcessPoolCore(PoolOptions options);
  ~ProcessPoolCore();

  unsigned size() const noexcept { return static_cast<unsigned>(slots_.size()); }
  void check_running();
  void enqueue(Record record);
  void close();
  void join();
  void terminate();
  std::vector<int> worker_pids();
  Writer take_buffer();
  [[nodiscard]] bool on_result_thread() const noexcept { return std::this_thread::get_id() == result_thread_id_; }
  // For a pool destroyed by one of its own callbacks, which runs on the result thread: this
  // thread finishes the destruction (reaps the workers, stops the watcher, deletes the core)
  // once the callback has returned.
  void outlive_callback(std::unique_ptr<ProcessPoolCore> self) noexcept;

  // JobHost
  void defer_completion(std::shared_ptr<JobBase> job) override;
  bool wait(JobBase& job, const Deadline& deadline) override;

 private:
  enum class State { running, closed, terminated };

  void spawn(Slot& slot);  // under mu_ or before the threads start
  void await_hello(Slot& slot);
  void abandon_start(bool watching);      // undoes a constructor that failed
  void throw_unless_running() const;      // under mu_; PoolNotRunning
  void dispatch();                        // under mu_
  bool send(Slot& slot, Record& record);  // under mu_
  std::size_t window() const;             // chunks in flight per worker; under mu_
  // When a worker is idle, takes back the chunks queued on a worker that has not moved for a
  // while (a long task, stopped, stuck), for the idle ones. Under mu_.
  void rescue_stalled(std::int64_t now);
  void revoke(Slot& slot);  // under mu_
  // Whether a wait is better spent spinning than asleep: when chunks are short, so results come
  // often, or when all the work in hand should be done within budget_ns (from the chunks'
  // average run time). Otherwise a waiter sleeps, and leaves the cores to the workers.
  bool spin_worthwhile(std::int64_t budget_ns) const;  // takes mu_

  bool drain();  // holds the collecting role; returns whether anything was read
  bool drain_slot(Slot& slot);
  void handle_message(Slot& slot);
  bool any_results() const noexcept;
  void run_deferred();
  void release_role() noexcept;                                // hands collecting back to the result thread
  bool collect_until(JobBase& job, const Deadline& deadline);  // the result thread's own waits

  void result_loop();
  void finish_orphaned() noexcept;  // on the result thread, after result_loop() of an orphan
  void watch_loop();
  void on_exit(Slot& slot);
  void wake_watcher() noexcept;
  void wake_result_thread() noexcept;
  void stop_threads();
  void kill_all();                                               // under mu_
  std::optional<os::Nanos> enforce_time_limits();                // kills overdue workers; returns the next check
  std::optional<os::Nanos> check_stalls();                       // rescue_stalled(); returns the next check
  void fail_pending_if_no_workers(std::vector<Record>& failed);  // under mu_
  void recycle(Writer buffer) noexcept;

  // Made in this order, each undoing itself: a constructor that throws leaves nothing behind.
  PoolOptions options_;
  std::vector<std::unique_ptr<Slot>> slots_;
  PoolMemory memory_;
  PoolShared* shared_;
  Spawner spawner_;
  os::Fd wake_read_, wake_write_;  // wakes the watcher

  mutable std::mutex mu_;
  std::condition_variable changed_;  // work finished or a worker exited; with mu_
  State state_ = State::running;     // guarded by mu_
  bool stopping_workers_ = false;    // guarded by mu_: no more respawns
  std::deque<Record> pending_;       // guarded by mu_
  std::size_t outstanding_ = 0;      // records pending or in flight; guarded by mu_
  std::uint64_t next_seq_ = 1;       // guarded by mu_
  double avg_chunk_ns_ = 0;          // moving average of a chunk's run time; guarded by mu_
  bool per_call_limits_ = false;     // a call has had its own TaskTimeout; guarded by mu_
  int init_failures_ = 0;            // initializer failures in a row; guarded by mu_
  std::exception_ptr init_error_;    // the last of them; guarded by mu_
  std::string broken_;               // why the pool cannot run work, if it cannot; guarded by mu_

  std::mutex buffers_mu_;
  std::vector<Writer> buffers_;  // spare chunk buffers; guarded by buffers_mu_

  std::mutex role_mu_;  // held by whoever reads the result rings: the result thread or a waiter
  std::mutex deferred_mu_;
  std::deque<std::shared_ptr<JobBase>> deferred_;  // completions for a pool thread; guarded by deferred_mu_
  std::atomic<bool> has_deferred_{false};

  std::atomic<bool> stop_threads_{false};
  std::mutex join_mu_;  // the pool's threads are joined under it, by whoever stops them first
  std::thread result_thread_;
  std::thread watch_thread_;
  std::thread::id result_thread_id_;         // set before anything can run a callback
  std::unique_ptr<ProcessPoolCore> orphan_;  // set by outlive_callback(); read by the result thread
};

}  // namespace mproc::detail
