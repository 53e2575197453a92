// job_host.hpp: JobHost — what a job needs of the pool that runs its tasks.
#pragma once

#include <memory>

#include "mproc/detail/wait.hpp"

namespace mproc::detail {

class JobBase;

// True on the threads a pool runs (its workers, result handler and watcher). Callbacks run
// only there; a job completed elsewhere hands its callbacks to the pool.
inline thread_local bool t_on_pool_thread = false;

// A pool thread to run callbacks on, and a way to make progress while a caller waits (a process
// pool lets the waiting thread collect results itself).
class JobHost {
 public:
  virtual void defer_completion(std::shared_ptr<JobBase> job) = 0;
  virtual bool wait(JobBase& job, const Deadline& deadline) = 0;
  // Whether wait() has the waiting thread make the progress itself (a process pool's waiter
  // collects results): then a wait for the first of several jobs (as_completed) is spent there too.
  [[nodiscard]] virtual bool waiter_collects() const noexcept { return false; }
  // Runs the callbacks of a job that one of the pool's threads finished. A pool whose threads
  // finish jobs at the same time (ThreadPool) serializes them here; by default they run at once.
  virtual void complete_on_pool_thread(JobBase& job) noexcept;

  // A future's requests (futures.hpp), each called only while the job is not done. cancel: keeps
  // the job's chunks that have not started from ever running; true when it kept any. running:
  // whether a chunk of it has started. terminate: stops it even while it runs; true when it did.
  // By default nothing can be cancelled or stopped, and a job runs once a chunk of it started.
  virtual bool cancel(JobBase& job);
  virtual bool running(JobBase& job);
  virtual bool terminate(JobBase& job);

 protected:
  ~JobHost() = default;
};

}  // namespace mproc::detail
