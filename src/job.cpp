#include "mproc/detail/job.hpp"

namespace mproc::detail {

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
