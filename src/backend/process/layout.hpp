// layout.hpp: a process pool's memory and its workers' births. PoolMemory lays out the memory
// shared with the workers and binds each slot to its part; Spawner forks a worker into a slot.
// Both are made before any thread or worker, and undo themselves: a pool whose construction
// fails halfway leaves no mapping and no registered descriptor behind.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "backend/process/guard.hpp"
#include "backend/process/memory_limit.hpp"
#include "backend/process/output.hpp"
#include "backend/process/slot.hpp"
#include "mproc/pool_options.hpp"
#include "os/os.hpp"

namespace mproc::detail {

// One shared anonymous mapping, made before any fork (no name, nothing left in /dev/shm): the
// PoolShared, a SlotShared per slot, then each slot's two rings.
class PoolMemory {
 public:
  // Maps the memory and binds every slot's shared part and rings to it.
  explicit PoolMemory(const std::vector<std::unique_ptr<Slot>>& slots);
  PoolMemory(const PoolMemory&) = delete;
  PoolMemory& operator=(const PoolMemory&) = delete;
  ~PoolMemory();

  [[nodiscard]] PoolShared& shared() const noexcept { return *shared_; }

 private:
  std::size_t size_;
  void* base_;
  PoolShared* shared_;
};

// Forks workers for one pool. Owns the watchdog pipe: its write end, which only this process
// holds, is the workers' second sign of the parent's death (its EOF); the pool's entries in the
// program's guard process, which ends the workers' groups if the program dies; and the workers'
// memory limits.
class Spawner {
 public:
  Spawner(PoolShared& pool, const Slots& slots, const PoolOptions& options);
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;
  ~Spawner();

  // Resets the slot and forks a worker into it; throws what fork or pidfd_open throws, with no
  // child left behind.
  void spawn(Slot& slot);
  // For the watcher, after a worker's end: whether it ran out of memory (memory_limit.hpp).
  [[nodiscard]] MemoryLimiter& memory() noexcept { return memory_; }

 private:
  PoolShared& pool_;
  const PoolOptions& options_;
  pid_t parent_;
  PoolGuard guard_;  // first: the program's guard is made before any worker, and before the pipes below exist
  MemoryLimiter memory_;
  os::Fd watchdog_read_, watchdog_write_;
  std::unique_ptr<OutputRelay> relay_;  // Output::lines; outlives the workers
};

}  // namespace mproc::detail
