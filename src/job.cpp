#include "mproc/detail/job.hpp"

#include <emmintrin.h>

#include <algorithm>

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

void JobBase::record_error(const std::exception_ptr& e) noexcept {
  if (!failed_.exchange(true, std::memory_order_acq_rel)) error_ = e;
}

void JobBase::items_done(std::size_t count) noexcept {
  if (remaining_.fetch_sub(count, std::memory_order_acq_rel) != count) return;
  if (!host_ || !has_callbacks())
    complete();
  else if (t_on_pool_thread)
    host_->complete_on_pool_thread(*this);
  else
    host_->defer_completion(shared_from_this());
}

void JobHost::complete_on_pool_thread(JobBase& job) noexcept { job.complete(); }

void JobBase::complete() noexcept {
  try {
    run_callbacks();
  } catch (...) {
    // A callback that throws fails the job with its exception.
    error_ = std::current_exception();
  }
  if (state_.exchange(kDone, std::memory_order_acq_rel) == kWaiting) wake_all(state_);
}

bool JobBase::wait_plain(const Deadline& deadline) {
  for (;;) {
    std::uint32_t s = state_.load(std::memory_order_acquire);
    if (s == kDone) return true;
    if (s == kPending && !state_.compare_exchange_weak(s, kWaiting, std::memory_order_acq_rel)) continue;
    if (!wait_for_change(state_, kWaiting, deadline)) return ready();
  }
}

}  // namespace mproc::detail
