#include "backend/process/guard.hpp"

#include <signal.h>

#include <chrono>
#include <utility>
#include <vector>

#include "os/os_ipc.hpp"
#include "os/os_limits.hpp"

namespace mproc::detail {
namespace {

// How often the guard checks that its parent is still the program, for the case where the
// pipe's end does not come (a child the program forked by hand keeps its write end).
constexpr std::chrono::milliseconds kParentCheck{250};

// Allocates nothing: the guard is forked from a program with threads, one of which may have held
// malloc's lock at the fork (ASan's allocator, unlike glibc's, is not made safe for that).
[[noreturn]] void guard_main(int read_fd, pid_t parent, const std::vector<SlotShared*>& workers) noexcept {
  // Nothing of the program's but the pipe: no descriptor of its kept open by the guard.
  os::close_fds_from(3, read_fd);
  // Signals meant for the program's process group are not for the guard: it must outlive the
  // program to act.
  for (int sig : {SIGINT, SIGQUIT, SIGHUP, SIGTERM, SIGPIPE}) os::ignore_signal(sig);
  // Nothing is ever written to the pipe: it becomes readable at its end, when the program is gone.
  while (!os::readable_within(read_fd, kParentCheck) && os::getppid() == parent) {
  }
  for (SlotShared* w : workers)
    if (pid_t group = w->group.load(std::memory_order_acquire); group > 0) os::kill_group(group, SIGKILL);
  os::exit_now(0);
}

}  // namespace

PoolGuard::PoolGuard(const Slots& slots) {
  std::vector<SlotShared*> workers;
  for (const auto& s : slots) workers.push_back(s->shared);
  auto [r, w] = os::pipe();
  os::register_parent_only_fd(w.get());
  const pid_t parent = os::getpid();
  try {
    os::flush_stdio();
    pid_ = os::fork();
  } catch (...) {
    os::unregister_parent_only_fd(w.get());
    throw;
  }
  if (pid_ == 0) guard_main(r.get(), parent, workers);
  write_ = std::move(w);
}

void PoolGuard::end() noexcept {
  if (!pid_) return;
  // Our unreaped child, so its number cannot be another's.
  os::kill(pid_, SIGKILL);
  os::reap(pid_);
  pid_ = 0;
  os::unregister_parent_only_fd(write_.get());
  write_.reset();
}

}  // namespace mproc::detail
