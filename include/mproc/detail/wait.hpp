// wait.hpp: how a thread waits — deadlines on the steady clock, the spin tuning shared by the
// pools' waits, and a futex wait on a 32-bit word that wakes to check for SIGINT.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace mproc::detail {

using Clock = std::chrono::steady_clock;
using Deadline = std::optional<Clock::time_point>;

template <class Rep, class Period>
Deadline deadline_after(std::chrono::duration<Rep, Period> timeout) {
  return Clock::now() + std::chrono::ceil<Clock::duration>(timeout);
}

// How often a long wait wakes to check for an interrupt.
inline constexpr std::chrono::milliseconds kInterruptCheck{50};
// How long a thread that waits spins as if it had its CPU to itself. Past this it yields between
// looks, or sleeps: the pools run more threads than there are CPUs (workers, the caller, a
// result thread), and a spinner would keep a CPU from one that has work to do. (sched_yield
// returns at once when no other thread wants the CPU.)
inline constexpr std::chrono::microseconds kSpinAlone{5};

// Waits on a 32-bit word: bounded spin, then a futex sleep. Throws Interrupted. In src/wait.cpp.
bool wait_for_change(const std::atomic<std::uint32_t>& word, std::uint32_t current, const Deadline& deadline);
void wake_all(const std::atomic<std::uint32_t>& word) noexcept;

}  // namespace mproc::detail
