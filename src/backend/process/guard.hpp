// guard.hpp: PoolGuard — one small process per pool that ends the workers' process groups when
// the program dies, however it dies. A worker ends with its parent by itself (PR_SET_PDEATHSIG,
// then its watchdog), but what its task started (a shell command, a `sleep`) would outlive both:
// nobody is left to kill the worker's group. The guard is made when the pool is built, before
// any worker; it holds the read end of a pipe whose write end only the program holds, and reads
// each worker's group in SlotShared::group (written by the pool as workers are born and reaped:
// one store, nothing added to a worker's start). At the pipe's end, or once its parent is not
// the program any more, it kills every group noted there and exits (os::GuardProcess, which shares
// the program's memory: no fork). A pool that ends kills it.
#pragma once

#include "backend/process/slot.hpp"
#include "os/os.hpp"
#include "os/os_limits.hpp"

namespace mproc::detail {

class PoolGuard {
 public:
  // Makes the guard; throws what pipe, mmap or clone throws, leaving nothing behind.
  explicit PoolGuard(const Slots& slots);
  PoolGuard(const PoolGuard&) = delete;
  PoolGuard& operator=(const PoolGuard&) = delete;
  // Once the pool's workers are gone for good (join, terminate): kills the guard, which has
  // nothing left to do, and reaps it. Idempotent; not concurrent with itself. kill() only sends
  // the signal, so that end() finds it gone after other work.
  void kill() noexcept {
    if (process_) process_->kill();
  }
  void end() noexcept;
  ~PoolGuard() { end(); }

 private:
  // Only the program holds it (registered parent-only: mproc's children close it).
  os::Fd write_;
  std::optional<os::GuardProcess> process_;
};

}  // namespace mproc::detail
