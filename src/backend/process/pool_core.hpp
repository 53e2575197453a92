// pool_core.hpp: ProcessPoolCore — the parent's side of a process pool, put together from its
// pieces: the memory and the forking of workers (layout.hpp), the chunks on their way
// (dispatch.hpp), the collecting of results (collect.hpp) and the watcher (watch.hpp), with the
// book of its chunks (chunk_book.hpp). The core builds them in order, takes work in, and shuts
// the pool down.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "backend/process/collect.hpp"
#include "backend/process/dispatch.hpp"
#include "backend/process/layout.hpp"
#include "backend/process/slot.hpp"
#include "backend/process/watch.hpp"
#include "mproc/detail/chunk_book.hpp"
#include "mproc/detail/insights_recorder.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/pool_options.hpp"

namespace mproc::detail {

class ProcessPoolCore final : public JobHost, public ChunkSink, private CollectorHost {
 public:
  explicit ProcessPoolCore(PoolOptions options);
  ~ProcessPoolCore();

  unsigned size() const noexcept { return static_cast<unsigned>(slots_.size()); }
  [[nodiscard]] ChunkBook& book() noexcept { return book_; }
  void check_running();
  void close();
  void join();
  void terminate();
  std::vector<int> worker_pids();
  // Null unless PoolOptions::insights.
  [[nodiscard]] const InsightsRecorder* insights() const noexcept { return insights_.get(); }
  [[nodiscard]] bool on_result_thread() const noexcept { return std::this_thread::get_id() == result_thread_id_; }
  // For a pool destroyed by one of its own callbacks, which runs on the result thread: this
  // thread finishes the destruction (reaps the workers, stops the watcher, deletes the core)
  // once the callback has returned.
  void outlive_callback(std::unique_ptr<ProcessPoolCore> self) noexcept;

  // JobHost
  void defer_completion(std::shared_ptr<JobBase> job) override { collector_.defer_completion(std::move(job)); }
  bool wait(JobBase& job, const Deadline& deadline) override { return collector_.wait(job, deadline); }
  [[nodiscard]] bool waiter_collects() const noexcept override { return true; }
  // The chunks of job that no worker has claimed, queued here or in a worker's ring, never run.
  bool cancel(JobBase& job) override;
  bool running(JobBase& job) override;
  // cancel(), and the worker running a chunk of job is killed and replaced (the watcher's path, as
  // for a time limit): its other chunks run elsewhere.
  bool terminate(JobBase& job) override;
  // Every chunk no worker has claimed is cancelled (shutdown(cancel_futures)).
  void cancel_queued();

  // ChunkSink
  void enqueue(Record record, const char* kind) override;

 private:
  // CollectorHost
  void on_hello(const std::exception_ptr& error) override;
  std::optional<Record> on_result(Slot& slot, const ResultHeader& header) override;
  void on_results_read(Record record) override;
  void settle() override;
  void count_read_chunks();  // under state_.mu: read_chunks_ counted as ended
  void on_chunk_timing(Slot& slot, const Record& record, const ChunkTiming& timing) override;
  bool spin_worthwhile(Nanos budget) override;

  void start_workers();               // in the constructor: forks them, reads their hellos
  void abandon_start(bool watching);  // undoes a constructor that failed
  void await_all_gone();
  void stop_threads();
  void finish_orphaned() noexcept;  // on the result thread, after its loop, for an orphan

  // Made in this order, each undoing itself: a constructor that throws leaves nothing behind.
  PoolOptions options_;
  Slots slots_;
  std::unique_ptr<InsightsRecorder> insights_;  // PoolOptions::insights; before the pieces that report to it
  PoolMemory memory_;
  Spawner spawner_;
  PoolState state_;
  Dispatcher dispatcher_;        // guarded by state_.mu
  std::size_t read_chunks_ = 0;  // results read, not yet counted as ended; by the collecting role's holder
  Collector collector_;
  Watcher watcher_;
  // Last, as the spare buffers were, away from state_.mu: the pieces above only keep a reference
  // to it until the constructor's body. Its phase, count and pace guarded by state_.mu.
  ChunkBook book_;

  std::mutex join_mu_;  // the pool's threads are joined under it, by whoever stops them first
  std::thread result_thread_;
  std::thread watch_thread_;
  std::thread::id result_thread_id_;         // set before anything can run a callback
  std::unique_ptr<ProcessPoolCore> orphan_;  // set by outlive_callback(); read by the result thread
  // What terminate() dropped from the workers' flights when it could not wait for them to die (on
  // the result thread): kept, with their jobs, until they are gone, for a worker killed in the
  // midst of a chunk may still be writing into its job's results in the heap. Guarded by
  // state_.mu.
  std::vector<Record> dropped_while_dying_;
};

}  // namespace mproc::detail
