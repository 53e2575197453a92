// interrupt.hpp: SIGINT as Python's KeyboardInterrupt. Where the program handles SIGINT, mproc
// counts each one; a blocking wait that sees the count move since it began throws Interrupted.
#pragma once

#include <cstdint>

namespace mproc::detail {

// The count, and a check that throws Interrupted when it moved since a wait began.
std::uint64_t interrupt_count() noexcept;
void throw_if_interrupted(std::uint64_t since);
// Starts counting (pools call it).
void watch_interrupts() noexcept;

}  // namespace mproc::detail
