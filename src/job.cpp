#include "mproc/detail/job.hpp"

#include <algorithm>
#include <cstdio>
#include <typeinfo>

#include "demangle.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {

void JobBase::record_error(const std::exception_ptr& e) noexcept {
  if (!(gate_.fetch_or(kFailed, std::memory_order_acq_rel) & kFailed)) error_ = e;
}

void JobBase::items_done(std::size_t count) noexcept {
  const bool last = remaining_.fetch_sub(count, std::memory_order_acq_rel) == count;
  // Before the job completes: a call's last count is reported before its results are ready.
  if (watched_.load(std::memory_order_acquire)) progressed();
  if (!last) return;
  if (!host_ || !has_callbacks())
    complete();
  else if (t_on_pool_thread)
    host_->complete_on_pool_thread(*this);
  else
    host_->defer_completion(shared_from_this());
}

void JobHost::complete_on_pool_thread(JobBase& job) noexcept { job.complete(); }
bool JobHost::cancel(JobBase&) { return false; }
bool JobHost::running(JobBase& job) { return job.chunks_started() > 0; }
bool JobHost::terminate(JobBase&) { return false; }

void JobBase::complete() noexcept {
  try {
    run_callbacks();
  } catch (...) {
    // A callback that throws fails the job with its exception.
    error_ = std::current_exception();
    gate_.fetch_or(kFailed, std::memory_order_acq_rel);
  }
  // Sequentially consistent, with add_on_done's: either it sees the job done, or this sees its extras.
  if (state_.exchange(kDone, std::memory_order_seq_cst) != kPending) wake_all(state_);
  if (JobExtras* x = extras_.load(std::memory_order_seq_cst)) run_done_callbacks(*x);
}

// --- a future's state ------------------------------------------------------------------------

std::exception_ptr cancelled_error() {
  return std::make_exception_ptr(CancelledError("mproc: the task was cancelled"));
}

void report_done_callback_error(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::exception& x) {
    std::fprintf(stderr, "mproc: exception calling a future's done callback: %s: %s\n", demangle(typeid(x)).c_str(),
                 x.what());
  } catch (...) {
    std::fprintf(stderr, "mproc: exception calling a future's done callback: not a std::exception\n");
  }
}

JobExtras& JobBase::extras() {
  JobExtras* x = extras_.load(std::memory_order_acquire);
  if (x) return *x;
  auto fresh = std::make_unique<JobExtras>();
  if (extras_.compare_exchange_strong(x, fresh.get(), std::memory_order_seq_cst)) return *fresh.release();
  return *x;  // another thread made them first
}

bool JobBase::close_gate() noexcept {
  // One atomic step on the word begin_chunk() counts in, as before: a chunk starts either before
  // the gate closes (the exchange fails and sees it) or after (and never runs). The gate closes
  // only if some chunk has not started, so a cancel that keeps nothing leaves no mark.
  std::uint32_t old = gate_.load(std::memory_order_acquire);
  do {
    if (old & kCancelRequested) return cancelled();
    if (old / kStarted >= chunks()) return false;  // every chunk started: nothing to keep
  } while (
      !gate_.compare_exchange_weak(old, old | kCancelRequested, std::memory_order_acq_rel, std::memory_order_acquire));
  mark_cancelled();
  on_cancelled();
  return true;
}

std::uint64_t JobBase::add_on_done(std::function<void()> fn) {
  JobExtras& x = extras();
  {
    std::lock_guard lock(x.mu);
    if (!x.done && state_.load(std::memory_order_seq_cst) != kDone) {
      x.on_done.emplace_back(++x.last_key, std::move(fn));
      return x.last_key;
    }
  }
  try {
    fn();
  } catch (...) {
    report_done_callback_error(std::current_exception());
  }
  return 0;
}

void JobBase::remove_on_done(std::uint64_t key) noexcept {
  JobExtras* x = extras_.load(std::memory_order_acquire);
  if (!x || key == 0) return;
  std::function<void()> removed;  // destroyed after the lock: it may hold the last reference to anything
  std::lock_guard lock(x->mu);
  // Keys grow as they are added, so the entries are sorted by key.
  auto it = std::lower_bound(x->on_done.begin(), x->on_done.end(), key,
                             [](const auto& entry, std::uint64_t k) { return entry.first < k; });
  if (it == x->on_done.end() || it->first != key) return;  // it runs or ran
  removed = std::move(it->second);
  x->on_done.erase(it);
}

std::size_t JobBase::on_done_count() const noexcept {
  JobExtras* x = extras_.load(std::memory_order_acquire);
  if (!x) return 0;
  std::lock_guard lock(x->mu);
  return x->on_done.size();
}

void JobBase::set_stop(std::function<bool()> stop) {
  JobExtras& x = extras();
  std::lock_guard lock(x.mu);
  x.stop = std::move(stop);
}

bool JobBase::request_stop() {
  JobExtras* x = extras_.load(std::memory_order_acquire);
  if (!x) return false;
  std::function<bool()> stop;
  {
    std::lock_guard lock(x->mu);
    stop = x->stop;
  }
  return stop && stop();
}

void JobBase::run_done_callbacks(JobExtras& x) noexcept {
  std::vector<std::pair<std::uint64_t, std::function<void()>>> fns;
  HandedWork* ran = nullptr;
  {
    std::lock_guard lock(x.mu);
    x.done = true;
    fns.swap(x.on_done);
    ran = std::exchange(x.running, nullptr);
  }
  if (ran) ran->release();  // before the callbacks, which may end its pool
  for (auto& entry : fns) {
    try {
      entry.second();
    } catch (...) {
      report_done_callback_error(std::current_exception());
    }
  }
}

bool JobBase::wait_plain(const Deadline& deadline) {
  for (;;) {
    std::uint32_t s = state_.load(std::memory_order_acquire);
    if (s == kDone) return true;
    if (s == kPending && !state_.compare_exchange_weak(s, kWaiting, std::memory_order_acq_rel)) continue;
    // Handed work (kHanded) is another thread's to do: this one waits on.
    if (!wait_for_change(state_, s == kHanded ? kHanded : kWaiting, deadline)) return ready();
  }
}

bool JobBase::wait_working(const Deadline& deadline) {
  if (!completes_whole()) return wait_plain(deadline);
  JobExtras& x = extras();
  {
    std::lock_guard lock(x.mu);
    ++x.workers;
  }
  // Handed work is for this thread from here on: it waits for it while readying the memory the
  // result's read will take (prepare_to_read), unless the wait is short (readying 64 MB takes a
  // few milliseconds) or the job's callbacks have its result read on a pool thread.
  using namespace std::chrono_literals;
  const bool prepared = !has_callbacks() && (!deadline || *deadline - Clock::now() > 100ms) && prepare_to_read();
  try {
    for (;;) {
      do_handed_work(x, false);
      std::uint32_t s = state_.load(std::memory_order_acquire);
      if (s == kDone) break;
      if (s == kHanded) {  // taken at the loop's top
        state_.compare_exchange_strong(s, kWaiting, std::memory_order_acq_rel);
        continue;
      }
      if (s == kPending && !state_.compare_exchange_weak(s, kWaiting, std::memory_order_acq_rel)) continue;
      if (!wait_for_change(state_, kWaiting, deadline)) break;
    }
  } catch (...) {  // Interrupted
    do_handed_work(x, true);
    if (prepared) finish_reading();
    throw;
  }
  do_handed_work(x, true);
  if (prepared) finish_reading();
  return ready();
}

void JobBase::do_handed_work(JobExtras& x, bool leaving) noexcept {
  std::unique_ptr<HandedWork> work;
  {
    std::lock_guard lock(x.mu);
    if (leaving && --x.workers > 0) return;  // handed work is for those who stay
    if (!x.handed) return;
    work = std::move(x.handed);
    x.running = work.get();
  }
  work->run();
  {
    std::lock_guard lock(x.mu);
    if (x.running != work.get()) return;  // it completed the job, which released it
    x.running = nullptr;
  }
  work->release();
}

bool JobBase::hand_to_waiter(std::unique_ptr<HandedWork>& work) {
  JobExtras* x = extras_.load(std::memory_order_acquire);
  if (!x || has_callbacks()) return false;
  {
    std::lock_guard lock(x->mu);
    // One piece at a time: a release tells the work it ran apart from any handed since.
    if (x->workers == 0 || x->handed || x->running || x->done) return false;
    x->handed = std::move(work);
  }
  // A waiter may take it, and complete the job, at once. The host keeps the job alive meanwhile.
  std::uint32_t s = state_.load(std::memory_order_acquire);
  while (s != kDone && !state_.compare_exchange_weak(s, kHanded, std::memory_order_acq_rel)) {
  }
  if (s == kWaiting) wake_all(state_);
  return true;
}

}  // namespace mproc::detail
