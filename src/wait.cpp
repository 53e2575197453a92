// A wait on a 32-bit word: see mproc/detail/wait.hpp.
#include "mproc/detail/wait.hpp"

#include <algorithm>
#include <climits>

#include "backoff.hpp"
#include "mproc/detail/interrupt.hpp"
#include "os/os.hpp"

namespace mproc::detail {

bool wait_for_change(const std::atomic<std::uint32_t>& word, std::uint32_t current, const Deadline& deadline) {
  for (Backoff backoff(waits::kJob, deadline); word.load(std::memory_order_acquire) == current;)
    if (!backoff.pause()) break;
  const std::uint64_t interrupts = interrupts_at_start();
  while (word.load(std::memory_order_acquire) == current) {
    Nanos slice = waits::kJob.sleep;
    if (deadline) {
      auto now = Clock::now();
      if (now >= *deadline) return false;
      slice = std::min<Nanos>(slice, *deadline - now);
    }
    os::futex_wait(word, current, slice, /*shared=*/false);
    if (word.load(std::memory_order_acquire) == current) throw_if_interrupted(interrupts);
  }
  return true;
}

void wake_all(const std::atomic<std::uint32_t>& word) noexcept { os::futex_wake(word, INT32_MAX, false); }

}  // namespace mproc::detail
