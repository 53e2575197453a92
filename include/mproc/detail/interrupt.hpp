// interrupt.hpp: SIGINT as Python's KeyboardInterrupt. Where the program handles SIGINT, mproc
// counts each one; a blocking call that sees the count move since it began throws Interrupted.
#pragma once

#include <cstdint>

namespace mproc::detail {

// The count, and a check that throws Interrupted when it moved since a wait began.
std::uint64_t interrupt_count() noexcept;
void throw_if_interrupted(std::uint64_t since);
// Where a wait counts from: the start of the blocking call around it (InterruptScope), else now.
std::uint64_t interrupts_at_start() noexcept;

// A blocking call that submits, then waits (map waits in slices): a SIGINT anywhere in it, while
// submitting or between two slices, interrupts it. Its waits count from its start, not their own.
// Nested scopes on one thread count from the outermost.
class InterruptScope {
 public:
  InterruptScope() noexcept;
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
};
// Starts counting (pools call it).
void watch_interrupts() noexcept;

}  // namespace mproc::detail
