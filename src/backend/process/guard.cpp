#include "backend/process/guard.hpp"

#include <atomic>
#include <bitset>
#include <cstddef>
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
  std::bitset<os::GuardProcess::kGroups> taken;  // by entry: claimed by a live pool
  std::size_t next = 0;                          // where the search for free entries starts
};

// A process's guard and the lock over it. A forked child has none: the memory its parent's guard
// shares is not inherited (MADV_DONTFORK), its pools are for a guard of its own to watch, and the
// parent's lock may have been held at the fork by another thread. So the child drops the state
// (one store, in a fork handler), and its first pool makes a fresh one. Nothing is locked across
// the fork: a parent's handler would write a page after every fork, a fault in the parent.
struct GuardState {
  std::mutex mu;
  // Made by the process's first pool and never ended from here: the guard outlives every pool,
  // static ones included, and a child that forgets it leaks nothing.
  ProgramGuard* guard = nullptr;  // guarded by mu
};

namespace {

std::atomic<GuardState*> g_state{nullptr};

// This process's state, made by its first call.
GuardState& state() {
  static const bool forget_in_child =
      (os::at_fork(nullptr, nullptr, [] { g_state.store(nullptr, std::memory_order_relaxed); }), true);
  (void)forget_in_child;
  GuardState* seen = g_state.load(std::memory_order_acquire);
  if (seen) return *seen;
  auto* fresh = new GuardState;
  if (g_state.compare_exchange_strong(seen, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;  // another thread of this process made it first
  return *seen;
}

// Under the state's mu.
ProgramGuard& program_guard(GuardState& s) {
  if (s.guard) return *s.guard;
  auto [r, w] = os::pipe();
  os::register_parent_only_fd(w.get());
  auto guard = std::make_unique<ProgramGuard>();
  try {
    guard->process.emplace(r.get());
  } catch (...) {
    os::unregister_parent_only_fd(w.get());
    throw;
  }
  guard->write = std::move(w);  // the read end closes here: the guard has its own
  s.guard = guard.release();
  return *s.guard;
}

}  // namespace

PoolGuard::PoolGuard(const Slots& slots) {
  GuardState& s = state();
  std::lock_guard hold(s.mu);
  ProgramGuard& guard = program_guard(s);
  state_ = &s;
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
  GuardState* s = g_state.load(std::memory_order_acquire);
  // A forked child's copy of its parent's pool: the entries are in the parent's guard, not its own.
  if (s != state_) return;
  std::lock_guard hold(s->mu);
  const auto groups = s->guard->process->groups();
  for (std::size_t i : entries_) {
    groups[i].store(0, std::memory_order_release);
    s->guard->taken[i] = false;
  }
}

int program_guard_pid() noexcept {
  GuardState* s = g_state.load(std::memory_order_acquire);
  if (!s) return 0;
  std::lock_guard hold(s->mu);
  return s->guard ? s->guard->process->pid() : 0;
}

}  // namespace mproc::detail
