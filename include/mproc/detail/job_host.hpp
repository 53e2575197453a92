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
  // Runs the callbacks of a job that one of the pool's threads finished. A pool whose threads
  // finish jobs at the same time (ThreadPool) serializes them here; by default they run at once.
  virtual void complete_on_pool_thread(JobBase& job) noexcept;

 protected:
  ~JobHost() = default;
};

}  // namespace mproc::detail
