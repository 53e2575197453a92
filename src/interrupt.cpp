// SIGINT as Python's KeyboardInterrupt: where the program has its own SIGINT handler, mproc
// counts each SIGINT before passing it on, and blocking waits that see the count change throw
// Interrupted.
#include <signal.h>

#include <atomic>

#include "mproc/detail/interrupt.hpp"
#include "mproc/errors.hpp"
#include "os/os.hpp"

namespace mproc::detail {
namespace {
std::atomic<std::uint64_t> g_interrupts{0};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "counted in a signal handler");
void note_interrupt(int) { g_interrupts.fetch_add(1, std::memory_order_relaxed); }

// This thread's open InterruptScopes, and the count when the outermost opened.
thread_local int t_scopes = 0;
thread_local std::uint64_t t_scope_start = 0;
}  // namespace

std::uint64_t interrupt_count() noexcept { return g_interrupts.load(std::memory_order_relaxed); }

std::uint64_t interrupts_at_start() noexcept { return t_scopes ? t_scope_start : interrupt_count(); }

InterruptScope::InterruptScope() noexcept {
  if (t_scopes++ == 0) t_scope_start = interrupt_count();
}

InterruptScope::~InterruptScope() { --t_scopes; }

void throw_if_interrupted(std::uint64_t since) {
  if (g_interrupts.load(std::memory_order_relaxed) != since)
    throw Interrupted("mproc: interrupted by SIGINT while waiting");
}

void watch_interrupts() noexcept { os::chain_signal_handler(SIGINT, note_interrupt); }

}  // namespace mproc::detail
