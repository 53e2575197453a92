// pool_core.hpp: MpiPoolCore — rank 0's side of an MpiPool: the queue of chunks, the one
// communication thread that makes every MPI call while the pool runs (so MPI_THREAD_SERIALIZED
// is enough), and the callback thread that runs completions off that thread. Its chunks are kept
// in a ChunkBook (chunk_book.hpp), as the process pool's.
#pragma once

#include <mpi.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "mproc/detail/buffer.hpp"
#include "mproc/detail/chunk_book.hpp"
#include "mproc/detail/insights_recorder.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/pool_options.hpp"

namespace mproc::detail {

class MpiPoolCore final : public JobHost, public ChunkSink {
 public:
  // Rank 0 only: starts the pool on ranks 1 .. n and waits for their initializers.
  explicit MpiPoolCore(const PoolOptions& options);
  ~MpiPoolCore();

  [[nodiscard]] unsigned size() const noexcept { return static_cast<unsigned>(workers_.size()); }
  [[nodiscard]] ChunkBook& book() noexcept { return book_; }
  void check_running();
  void close();
  void join();
  void terminate();
  [[nodiscard]] std::vector<int> worker_ranks() const;
  // Null unless PoolOptions::insights.
  [[nodiscard]] const InsightsRecorder* insights() const noexcept { return insights_.get(); }

  // JobHost
  void defer_completion(std::shared_ptr<JobBase> job) override;
  bool wait(JobBase& job, const Deadline& deadline) override { return job.wait_plain(deadline); }
  // A future's cancel: drops job's chunks not yet handed to a rank. One handed to its rank (each
  // gets a few ahead of its work, the window) runs: a rank reads its next task as soon as it is
  // free, and stopping it would end the MPI job. terminate() is the same cancel, for that reason.
  bool cancel(JobBase& job) override;
  bool terminate(JobBase& job) override { return cancel(job); }
  // A rank runs its chunks in the order it was given them: the oldest one not finished is the
  // one it runs (or, for the moment its message is on the way, is about to).
  bool running(JobBase& job) override;
  // shutdown(cancel_futures): every chunk not yet handed to a rank is cancelled.
  void cancel_queued();

  // ChunkSink
  void enqueue(Record record, const char* kind) override;

 private:
  // A chunk sent to a worker rank: its task frame is kept until the send completes.
  struct Sent {
    Record record;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  struct Worker {
    explicit Worker(int r) : rank(r) {}
    int rank = 0;
    std::deque<Sent> inflight;  // sent, in order; touched by the communication thread only
    // The job of inflight's front, for running() on callers' threads; the communication thread
    // sets it whenever the front changes (publish_front), while the front's record keeps the job.
    std::atomic<const JobBase*> front_job{nullptr};
    void publish_front() noexcept {
      front_job.store(inflight.empty() ? nullptr : inflight.front().record.job.get(), std::memory_order_release);
    }
  };

  void start_workers(std::uint32_t init_module, std::uint64_t init_offset);
  void stop_workers(bool terminating);  // communication thread, or the constructor

  void comm_loop();
  bool dispatch();
  bool collect();
  void handle_result(Worker& w);
  void abandon();
  void finished(std::size_t records);

  void callback_loop();
  void stop_threads();

  std::deque<Worker> workers_;                  // ranks 1 .. n; a deque, as a Worker is not nothrow-movable
  std::unique_ptr<InsightsRecorder> insights_;  // PoolOptions::insights; chunks recorded by the comm thread
  Writer inbox_;                                // communication thread only
  std::vector<Record> sending_;                 // taken from queued_ to be sent now; communication thread only
  std::vector<Sent> abandoned_;                 // failed by terminate(), sends maybe incomplete; comm thread only

  mutable std::mutex mu_;
  // Its phase and count guarded by mu_; its numbering and pace the communication thread's only.
  ChunkBook book_;
  std::condition_variable wake_comm_;  // work, stop or terminate for a sleeping comm thread; with mu_
  std::condition_variable changed_;    // the book settled (see ChunkBook::settled); with mu_
  std::deque<Record> queued_;          // not yet handed to a rank, in order; guarded by mu_
  bool comm_sleeping_ = false;         // guarded by mu_
  bool stop_requested_ = false;        // guarded by mu_
  bool terminate_requested_ = false;   // guarded by mu_

  std::mutex deferred_mu_;
  std::condition_variable deferred_cv_;
  std::deque<std::shared_ptr<JobBase>> deferred_;  // completions for the callback thread; guarded by deferred_mu_
  bool callbacks_stop_ = false;                    // guarded by deferred_mu_

  std::mutex threads_mu_;  // held while joining the threads, which happens once
  std::thread comm_thread_;
  std::thread callback_thread_;
};

}  // namespace mproc::detail
