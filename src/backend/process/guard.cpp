#include "backend/process/guard.hpp"

#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "mproc/detail/process_backend.hpp"
#include "os/os.hpp"
#include "os/os_ipc.hpp"
#include "os/os_limits.hpp"

namespace mproc::detail {

// This process's guard, made by its first pool and never ended from here.
struct ProgramGuard {
  os::Fd write;  // the pipe's write end: only the program holds it (registered parent-only)
  std::optional<os::GuardProcess> process;
  std::vector<bool> taken;  // by entry: claimed by a live pool
  std::size_t next = 0;     // where the search for free entries starts
};

namespace {

std::mutex g_mu;
ProgramGuard* g_guard = nullptr;  // guarded by g_mu; leaked on purpose: it outlives every pool

// A forked child has no guard: the memory the parent's shares with it is not inherited
// (MADV_DONTFORK), and its pools are for its own guard to watch. The lock is held across the fork,
// so that the child's copy of it is free.
void lock_for_fork() { g_mu.lock(); }
void unlock_after_fork() { g_mu.unlock(); }
void forget_in_child() {
  g_guard = nullptr;
  g_mu.unlock();
}
void forget_at_fork() {
  static const bool registered = (os::at_fork(lock_for_fork, unlock_after_fork, forget_in_child), true);
  (void)registered;
}

// Under g_mu.
ProgramGuard& program_guard() {
  if (g_guard) return *g_guard;
  auto guard = std::make_unique<ProgramGuard>();
  auto [r, w] = os::pipe();
  os::register_parent_only_fd(w.get());
  try {
    guard->process.emplace(r.get());
  } catch (...) {
    os::unregister_parent_only_fd(w.get());
    throw;
  }
  guard->write = std::move(w);  // the read end closes here: the guard has its own
  guard->taken.assign(os::GuardProcess::kGroups, false);
  g_guard = guard.release();
  return *g_guard;
}

}  // namespace

PoolGuard::PoolGuard(const Slots& slots) {
  forget_at_fork();
  std::lock_guard hold(g_mu);
  ProgramGuard& guard = program_guard();
  owner_ = &guard;
  const std::size_t n = guard.taken.size();
  for (std::size_t looked = 0; entries_.size() < slots.size() && looked < n; ++looked) {
    const std::size_t i = (guard.next + looked) % n;
    if (!guard.taken[i]) entries_.push_back(i);
  }
  if (entries_.size() < slots.size())
    throw std::length_error("mproc: the program's pools hold " + std::to_string(n - entries_.size()) +
                            " workers at once, and this one asks for " + std::to_string(slots.size()) +
                            " more (at most " + std::to_string(n) + " in all)");
  const auto groups = guard.process->groups();
  for (std::size_t k = 0; k < slots.size(); ++k) {
    guard.taken[entries_[k]] = true;
    slots[k]->group = &groups[entries_[k]];
  }
  guard.next = (entries_.back() + 1) % n;
}

PoolGuard::~PoolGuard() {
  std::lock_guard hold(g_mu);
  if (g_guard != owner_) return;  // a forked child's copy of its parent's pool: the entries are not its
  const auto groups = owner_->process->groups();
  for (std::size_t i : entries_) {
    groups[i].store(0, std::memory_order_release);
    owner_->taken[i] = false;
  }
}

int program_guard_pid() noexcept {
  std::lock_guard hold(g_mu);
  return g_guard ? g_guard->process->pid() : 0;
}

}  // namespace mproc::detail
