// pool_core.hpp: MpiPoolCore — rank 0's side of an MpiPool: the queue of chunks, the one
// communication thread that makes every MPI call while the pool runs (so MPI_THREAD_SERIALIZED
// is enough), and the callback thread that runs completions off that thread. Its chunks are kept
// in a ChunkBook (chunk_book.hpp), as the process pool's.
#pragma once

#include <mpi.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "mproc/detail/buffer.hpp"
#include "mproc/detail/chunk_book.hpp"
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

  // JobHost
  void defer_completion(std::shared_ptr<JobBase> job) override;
  bool wait(JobBase& job, const Deadline& deadline) override { return job.wait_plain(deadline); }

  // ChunkSink
  void enqueue(Record record) override;

 private:
  // A chunk sent to a worker rank: its task frame is kept until the send completes.
  struct Sent {
    Record record;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  struct Worker {
    int rank = 0;
    std::deque<Sent> inflight;  // sent, in order; touched by the communication thread only
  };

  void start_workers(std::uint32_t init_module, std::uint64_t init_offset);
  void stop_workers(bool terminating);  // communication thread, or the constructor

  void comm_loop();
  bool dispatch(std::deque<Record>& pending);
  bool collect();
  void handle_result(Worker& w);
  void abandon(std::deque<Record>& pending);
  void finished(std::size_t records);

  void callback_loop();
  void stop_threads();

  std::deque<Worker> workers_;   // ranks 1 .. n; a deque, as a Worker is not nothrow-movable
  Writer inbox_;                 // communication thread only
  std::vector<Sent> abandoned_;  // failed by terminate(), sends maybe incomplete; comm thread only

  mutable std::mutex mu_;
  // Its phase and count guarded by mu_; its numbering and pace the communication thread's only.
  ChunkBook book_;
  std::condition_variable wake_comm_;  // work, stop or terminate for a sleeping comm thread; with mu_
  std::condition_variable changed_;    // the book settled (see ChunkBook::settled); with mu_
  std::deque<Record> incoming_;        // guarded by mu_
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
