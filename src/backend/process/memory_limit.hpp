// memory_limit.hpp: PoolOptions::memory_limit for a process pool. Where this process may make
// cgroup v2 groups limited in memory (delegation), each worker runs in a fresh group of its own
// with memory.max, and the kernel's out-of-memory kill of it is read from memory.events. Else the
// worker limits itself with RLIMIT_DATA, on top of the private memory it had at its start: an
// allocation past it fails, the worker's new_handler notes it in SlotShared, and a std::bad_alloc
// that escapes a task ends the worker with kMemoryLimitExit. Either way the watcher asks verdict()
// after a worker's end whether its lost task gets a MemoryLimitError.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/process/slot.hpp"
#include "mproc/pool_options.hpp"
#include "os/os.hpp"
#include "os/os_limits.hpp"

namespace mproc::detail {

// The exit status of a worker that a std::bad_alloc escaped from under its RLIMIT_DATA.
constexpr int kMemoryLimitExit = 77;

// The parent's side: the mechanism, chosen once per pool, and a group per slot where there are groups.
class MemoryLimiter {
 public:
  enum class Mechanism { none, cgroup, rlimit };

  explicit MemoryLimiter(const PoolOptions& options);
  [[nodiscard]] Mechanism mechanism() const noexcept { return mechanism_; }

  // Before forking a worker into slot: a fresh group for it (cgroup); returns the descriptor
  // the child enters it through, or -1 (no group: the child sets its RLIMIT_DATA). Throws what
  // making the group throws.
  int prepare(const Slot& slot);
  // What a worker that ended leaves for verdict(): its group, and what it noted of a failed
  // allocation.
  struct Remains {
    std::unique_ptr<os::MemoryGroup> group;
    std::uint64_t failed_seq = 0;
    std::size_t used = 0;
  };
  // After the worker of slot ended, reaped, before the slot gets a new worker (and group):
  // quick, under PoolState::mu, which guards the groups of the slots.
  Remains remains_of(const Slot& slot);
  // Then, outside the lock (the group's files are read, and its removal may wait up to 100 ms for
  // what is left in it to die): a MemoryLimitError when the worker ran out of memory while it ran
  // the chunk with sequence seq (0: none), else null. Removes the group.
  std::exception_ptr verdict(Remains remains, std::uint64_t seq, pid_t pid, const os::ExitStatus& status,
                             int attempts) const;

 private:
  std::optional<std::size_t> limit_;
  Mechanism mechanism_ = Mechanism::none;
  std::string cgroup_dir_;
  std::string group_prefix_;                              // "mproc-PID-POOL-": unique per pool
  std::vector<std::unique_ptr<os::MemoryGroup>> groups_;  // by slot id; guarded by PoolState::mu
  unsigned long spawned_ = 0;                             // makes each group's name unique
};

// The worker's side, first thing after the fork: enters its group (cgroup_fd), or sets its
// RLIMIT_DATA to what it uses now plus limit and notes allocations that fail in shared.
void limit_worker_memory(SlotShared& shared, std::size_t limit, int cgroup_fd) noexcept;

}  // namespace mproc::detail
