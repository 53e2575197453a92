// guard.hpp: the program's guard process, and each pool's entries in it. The guard ends the
// workers' process groups when the program dies, however it dies. A worker ends with its parent
// by itself (PR_SET_PDEATHSIG, then its watchdog), but what its task started (a shell command, a
// `sleep`) would outlive both: nobody is left to kill the worker's group.
//
// One guard serves every pool of a process: the first pool makes it (os::GuardProcess, which
// shares the program's memory: no fork), and it lives as long as the program, no one's child, as
// the shared-memory tracker does. So a pool's start and end cost no process. Each pool claims an
// entry of its table per slot, where the pool notes the slot's worker's group as the worker is
// born and reaped (one store: nothing is added to a worker's start), and gives them back when it
// ends. A child forked afterwards (a Process, a worker, a hand-made fork) has no guard and makes
// its own with its first pool.
#pragma once

#include <cstddef>
#include <vector>

#include "backend/process/slot.hpp"

namespace mproc::detail {

struct GuardState;  // a process's guard and its lock

class PoolGuard {
 public:
  // Claims an entry for each slot (Slot::group), making the program's guard first when this
  // process has none: throws what pipe, mmap, clone or pidfd_open throws, leaving nothing behind,
  // or std::length_error while the program's pools hold os::GuardProcess::kGroups slots.
  explicit PoolGuard(const Slots& slots);
  PoolGuard(const PoolGuard&) = delete;
  PoolGuard& operator=(const PoolGuard&) = delete;
  // The entries go back, zeroed: the pool's workers are gone by then.
  ~PoolGuard();

 private:
  GuardState* state_ = nullptr;  // whose guard holds the entries: this process's, or its parent's
  std::vector<std::size_t> entries_;
};

}  // namespace mproc::detail
