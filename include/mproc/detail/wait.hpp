// wait.hpp: mproc's one clock (Clock, now_ns), its one timeout type (OptNanos) and one deadline
// type (Deadline), and a futex wait on a 32-bit word that wakes to check for SIGINT. How a wait
// spins before it sleeps is src/backoff.hpp's.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace mproc::detail {

// The monotonic clock, CLOCK_MONOTONIC (libstdc++'s steady_clock on Linux): the clock futex and
// pthread_mutex_clocklock timeouts are measured on, and the same in every process, so stamps one
// process leaves in shared memory mean the same to another.
using Clock = std::chrono::steady_clock;
using Nanos = std::chrono::nanoseconds;
// A timeout: how long a call may wait; nullopt waits forever.
using OptNanos = std::optional<Nanos>;
// When a wait gives up; nullopt: never.
using Deadline = std::optional<Clock::time_point>;

// A timeout of any duration as an OptNanos' nanoseconds; a negative one is 0.
template <class Rep, class Period>
Nanos to_nanos(std::chrono::duration<Rep, Period> d) {
  return std::max(Nanos::zero(), std::chrono::duration_cast<Nanos>(d));
}

// Clock's reading in nanoseconds: for stamps kept in shared memory and averaged.
inline std::int64_t now_ns() noexcept { return Nanos(Clock::now().time_since_epoch()).count(); }

inline Deadline deadline_after(const OptNanos& timeout) {
  if (!timeout) return std::nullopt;
  return Clock::now() + *timeout;
}
template <class Rep, class Period>
Deadline deadline_after(std::chrono::duration<Rep, Period> timeout) {
  return Clock::now() + std::chrono::ceil<Clock::duration>(timeout);
}
// What is left of a deadline, never negative; nullopt stays nullopt (a wait without end).
inline OptNanos time_left(const Deadline& deadline) {
  if (!deadline) return std::nullopt;
  return std::max(Nanos::zero(), Nanos(*deadline - Clock::now()));
}
inline bool passed(const Deadline& deadline) { return deadline && Clock::now() >= *deadline; }

// How often a long wait wakes to check for an interrupt.
inline constexpr std::chrono::milliseconds kInterruptCheck{50};

// Waits on a 32-bit word: bounded spin, then a futex sleep. Throws Interrupted. In src/wait.cpp.
bool wait_for_change(const std::atomic<std::uint32_t>& word, std::uint32_t current, const Deadline& deadline);
void wake_all(const std::atomic<std::uint32_t>& word) noexcept;

}  // namespace mproc::detail
