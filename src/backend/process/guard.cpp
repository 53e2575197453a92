#include "backend/process/guard.hpp"

#include <bitset>
#include <cstddef>
#include <mutex>
#include <new>
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
  std::bitset<os::GuardProcess::kGroups> taken;  // by entry: claimed by a live pool
  std::size_t next = 0;                          // where the search for free entries starts
  pid_t program = 0;                             // the process that made it
};

namespace {

std::mutex g_mu;
// In static storage whose destructor never runs: the guard outlives every pool, static ones
// included, and a forked child that forgets it leaks nothing.
alignas(ProgramGuard) std::byte g_storage[sizeof(ProgramGuard)];
ProgramGuard* g_guard = nullptr;  // in g_storage once made; guarded by g_mu

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
  auto [r, w] = os::pipe();
  os::register_parent_only_fd(w.get());
  auto* guard = new (g_storage) ProgramGuard;
  try {
    guard->process.emplace(r.get());
  } catch (...) {
    guard->~ProgramGuard();
    os::unregister_parent_only_fd(w.get());
    throw;
  }
  guard->write = std::move(w);  // the read end closes here: the guard has its own
  guard->program = os::getpid();
  g_guard = guard;
  return *guard;
}

}  // namespace

PoolGuard::PoolGuard(const Slots& slots) {
  forget_at_fork();
  std::lock_guard hold(g_mu);
  ProgramGuard& guard = program_guard();
  program_ = guard.program;
  const std::size_t n = guard.taken.size();  // a pool's entries are searched from where the last one's ended
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
  // A forked child's copy of its parent's pool: the entries are in the parent's guard, not its own.
  if (!g_guard || g_guard->program != program_) return;
  const auto groups = g_guard->process->groups();
  for (std::size_t i : entries_) {
    groups[i].store(0, std::memory_order_release);
    g_guard->taken[i] = false;
  }
}

int program_guard_pid() noexcept {
  std::lock_guard hold(g_mu);
  return g_guard ? g_guard->process->pid() : 0;
}

}  // namespace mproc::detail
