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

#include "backend/process/channel.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/pool_options.hpp"
#include "os/os.hpp"

namespace mproc::detail {

// Shared with the workers: one per pool.
struct PoolShared {
  alignas(64) Bell doorbell;  // the result thread sleeps here; workers ring it after a result
};

// Shared with one worker: its bell, what it runs now, and its two rings' headers.
struct SlotShared {
  alignas(64) Bell task_bell;                             // the worker sleeps here while it has no task
  alignas(64) std::atomic<std::uint64_t> started_seq{0};  // the chunk it runs or last ran
  std::atomic<std::int64_t> started_ns{0};                // when it started it (now_ns())
  // The last chunk the worker claimed to run, or kRevoked | R: chunks up to R taken back by the
  // parent, which the worker skips. Both sides CAS it, so a chunk is either run or taken back.
  std::atomic<std::uint64_t> claim{0};
  RingHeader task_header;
  RingHeader result_header;
};

// A chunk of a job on its way: pending, or in flight on a worker.
struct Record {
  std::shared_ptr<JobBase> job;
  std::size_t first = 0;
  std::size_t count = 0;
  Writer task;        // its task frame (wire.hpp), kept until the result arrives, to resend if the worker is lost first
  ResultReader read;  // reads its results into job, knowing their type
  std::uint64_t seq = 0;
  std::int64_t limit_ns = 0;  // its time limit once started; 0: none
};

// Message sequence numbers: 0 is a control message (the worker's hello; the parent's stop).
constexpr std::uint64_t kControlSeq = 0;
constexpr std::uint64_t kRevoked = std::uint64_t{1} << 63;  // in SlotShared::claim

// The worker's side of SlotShared::claim: whether it may run chunk seq.
bool claim_chunk(std::atomic<std::uint64_t>& claim, std::uint64_t seq) noexcept;

struct Slot {
  SlotShared* shared = nullptr;
  Ring tasks;    // parent -> worker
  Ring results;  // worker -> parent
  pid_t pid = 0;
  os::Fd pidfd;
  bool alive = false;               // guarded by ProcessPoolCore::mu_
  long chunks_sent = 0;             // since spawned; guarded by mu_
  std::deque<Record> inflight;      // sent, result not yet read, in order; guarded by mu_
  std::atomic<bool> dead{false};    // set by the watcher as soon as it sees the exit
  std::uint64_t timed_out_seq = 0;  // the chunk it was killed for running too long; guarded by mu_
  std::int64_t progress_ns = 0;     // its last result, or work given to it idle; guarded by mu_
  bool stalled = false;             // its unstarted chunks were taken back: no more until it
                                    // shows progress; guarded by mu_
  Writer inbox;                     // used only by the thread holding the collecting role
};

// What a worker needs after the fork.
struct WorkerContext {
  Slot* slot;
  PoolShared* pool;
  const PoolOptions* options;
  pid_t parent;
  int watchdog;  // read end of a pipe whose write end only the parent holds: EOF = parent gone
};
[[noreturn]] void run_worker(const WorkerContext& ctx) noexcept;

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

  void map_memory();
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

  PoolOptions options_;
  void* memory_ = nullptr;
  std::size_t memory_size_ = 0;
  PoolShared* shared_ = nullptr;
  std::vector<std::unique_ptr<Slot>> slots_;
  pid_t parent_pid_;

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

  os::Fd wake_read_, wake_write_;          // wakes the watcher
  os::Fd watchdog_read_, watchdog_write_;  // the workers' second sign of our death
  std::atomic<bool> stop_threads_{false};
  std::mutex join_mu_;  // the pool's threads are joined under it, by whoever stops them first
  std::thread result_thread_;
  std::thread watch_thread_;
  std::thread::id result_thread_id_;         // set before anything can run a callback
  std::unique_ptr<ProcessPoolCore> orphan_;  // set by outlive_callback(); read by the result thread
};

}  // namespace mproc::detail
