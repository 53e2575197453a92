// os_limits.hpp: the os wrappers of a worker's memory limit — RLIMIT_DATA and what it counts, and
// cgroup v2 groups with memory.max — and the program's guard process. Same rules as os.hpp.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <optional>
#include <span>
#include <string>

#include "os/os.hpp"

namespace mproc::detail::os {

// --- RLIMIT_DATA ----------------------------------------------------------------------------
// The calling process's private writable memory in bytes (VmData in /proc/self/status): what
// RLIMIT_DATA counts since Linux 4.7. Shared mappings (the shared heap, the pool's rings) are not
// part of it, nor are reservations without write access; thread stacks and malloc's arenas, as
// they are made writable, are. 0 when it cannot be read. Allocates nothing: safe in a new_handler.
std::size_t data_bytes() noexcept;
// setrlimit(RLIMIT_DATA) to bytes, soft and hard (the hard limit is lowered: a task cannot undo it).
void limit_data(std::size_t bytes);

// --- cgroup v2 ------------------------------------------------------------------------------
// The directory of this process's cgroup v2 group where it may make child groups limited in
// memory: cgroup2 mounted, the memory controller enabled for the group's children (in its
// cgroup.subtree_control, as a delegating manager or container leaves it), and the directory
// writable by this process. nullopt otherwise (cgroup v1, a hybrid mount without memory, no
// delegation). Read once per call: a few small files.
std::optional<std::string> delegated_memory_cgroup() noexcept;

// A child cgroup v2 group with a memory limit, made for one process: the parent makes it before
// the fork, the child moves itself in (enter), the parent reads what happened after the child's
// end and removes it (the destructor kills whatever is left in it first).
class MemoryGroup {
 public:
  // mkdir parent_dir/name; memory.max = limit, memory.swap.max = 0 (a limit, not a reason to
  // swap), memory.oom.group = 1 (an out-of-memory kill takes the whole group). Throws
  // std::system_error naming the file that could not be made or written.
  MemoryGroup(const std::string& parent_dir, const std::string& name, std::size_t limit);
  MemoryGroup(const MemoryGroup&) = delete;
  MemoryGroup& operator=(const MemoryGroup&) = delete;
  ~MemoryGroup();

  // Its cgroup.procs, open for writing (close-on-exec): the child's way in.
  [[nodiscard]] int procs_fd() const noexcept { return procs_.get(); }
  // In the child: moves the calling process into the group whose cgroup.procs is procs_fd.
  static bool enter(int procs_fd) noexcept;
  // Whether the kernel's out-of-memory killer killed a process of the group (memory.events).
  [[nodiscard]] bool oom_killed() const noexcept;
  // The group's peak usage in bytes (memory.peak, Linux 5.19), else its usage now; 0 if unknown.
  [[nodiscard]] std::size_t peak() const noexcept;

 private:
  std::string dir_;
  Fd procs_;
};

// --- the program's guard process -------------------------------------------------------------
// A process that kills the process groups noted in its table once the program that made it is
// gone: when read_fd (the read end of a pipe whose write end only the program holds) reaches its
// end, which the program's end or an exec brings, or when the program has ended (a pidfd, for a
// child forked by hand that keeps the write end open). It reads its table only then; 0 is
// skipped. It lives as long as the program: no one's child (its parent, the first step below,
// exits at once), it ends by itself and is reaped by init or the nearest subreaper, as a
// daemon's grandchild is.
//
// It shares the program's memory (clone with CLONE_VM, as posix_spawn's child does), so it reads
// the table where the program writes it, and it starts in tens of microseconds where a fork
// copies the page tables. What sharing the memory demands:
// - It is made in two steps. First a child during which the creating thread is stopped
//   (CLONE_VFORK) closes every descriptor but read_fd, opens the program's pidfd, makes the guard
//   and exits. Only this step uses the creating thread's thread-local storage (errno, a
//   sanitizer's fake stack), as that thread would.
// - The guard makes raw system calls that do not fail while the program lives, in code built
//   without sanitizer instrumentation: no thread-local storage that a thread of the program uses.
//   Every signal is blocked in both (SIGKILL and SIGSTOP aside): a handler of the program's never
//   runs there, and a signal meant for the program or its process group does not end the guard.
// - Its memory (stacks and table) is MADV_DONTFORK: a child forked later has none of it, and
//   makes its own guard.
class GuardProcess {
 public:
  static constexpr std::size_t kGroups = 65536;  // the table's entries: groups noted at once

  // Throws std::system_error naming mmap, clone or pidfd_open, leaving nothing behind.
  explicit GuardProcess(int read_fd);
  GuardProcess(const GuardProcess&) = delete;
  GuardProcess& operator=(const GuardProcess&) = delete;
  // The guard goes on: it ends by itself once the program is gone.
  ~GuardProcess() = default;

  // Where the program notes the groups to kill, kGroups entries; 0 is nothing.
  [[nodiscard]] std::span<std::atomic<pid_t>> groups() const noexcept;
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

 private:
  void* area_ = nullptr;  // the two steps' stacks, then what the guard reads (GuardFrame, the table)
  pid_t pid_ = 0;
};

}  // namespace mproc::detail::os
