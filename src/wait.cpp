// A wait on a 32-bit word: see mproc/detail/wait.hpp.
#include "mproc/detail/wait.hpp"

#include <emmintrin.h>

#include <algorithm>
#include <climits>

#include "mproc/detail/interrupt.hpp"
#include "os/os.hpp"

namespace mproc::detail {

bool wait_for_change(const std::atomic<std::uint32_t>& word, std::uint32_t current, const Deadline& deadline) {
  // A short spin (about kSpinAlone: a pause takes ~25 ns here) catches results that are that
  // close without a system call. No longer: hosts that expect a result soon have spun already,
  // and one that chose to sleep may share its CPU with the worker it waits for.
  for (int i = 0; i < 200; ++i) {
    if (word.load(std::memory_order_acquire) != current) return true;
    _mm_pause();
  }
  const std::uint64_t interrupts = interrupt_count();
  while (word.load(std::memory_order_acquire) == current) {
    os::Nanos left = kInterruptCheck;
    if (deadline) {
      auto now = Clock::now();
      if (now >= *deadline) return false;
      left = std::min<os::Nanos>(left, *deadline - now);
    }
    os::futex_wait(word, current, left, /*shared=*/false);
    if (word.load(std::memory_order_acquire) == current) throw_if_interrupted(interrupts);
  }
  return true;
}

void wake_all(const std::atomic<std::uint32_t>& word) noexcept { os::futex_wake(word, INT32_MAX, false); }

}  // namespace mproc::detail
