// job.hpp: JobBase and its kinds — ValueJob (one task: apply_async), ListJob (many tasks whose
// results are gathered in order: map, starmap and their async forms) and StreamJob (results
// handed out one by one: imap, imap_unordered). A job is the state a front end call shares with
// a backend: the backend reports each item's result or exception; the job completes, runs its
// callbacks on a pool thread, and wakes whoever waits.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "mproc/detail/interrupt.hpp"
#include "mproc/detail/job_host.hpp"
#include "mproc/detail/wait.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {

class JobBase : public std::enable_shared_from_this<JobBase> {
 public:
  JobBase(JobHost* host, std::size_t items) : host_(host), remaining_(items) {}
  JobBase(const JobBase&) = delete;
  JobBase& operator=(const JobBase&) = delete;
  virtual ~JobBase() = default;

  // Items [first, first + count) failed as a whole: worker lost, pool terminated, bad encoding.
  virtual void fail(std::size_t first, std::size_t count, const std::exception_ptr& e) = 0;
  // Runs the callbacks and marks the job ready; called on a pool thread.
  void complete() noexcept;

  [[nodiscard]] bool ready() const noexcept { return state_.load(std::memory_order_acquire) == kDone; }
  // What a waiter waits for: completion (ready()), or for a stream its next result.
  [[nodiscard]] virtual bool satisfied() noexcept { return ready(); }
  // Waits until satisfied or the deadline passes; returns satisfied(). Hosts may make progress
  // meanwhile (a process pool's waiter collects results itself).
  bool wait(const Deadline& deadline) {
    return satisfied() || (host_ ? host_->wait(*this, deadline) : wait_plain(deadline));
  }
  // Sleeps until satisfied, for hosts with nothing better to do meanwhile. Throws Interrupted.
  virtual bool wait_plain(const Deadline& deadline);
  [[nodiscard]] bool successful() const noexcept { return !error_; }
  [[nodiscard]] const std::exception_ptr& error() const noexcept { return error_; }
  // For a host that must not block its pool: a caller waiting on this job from a pool thread.
  [[nodiscard]] const std::atomic<std::uint32_t>& state_word() const noexcept { return state_; }
  // A time limit for each of this job's tasks, in place of the pool's (TaskTimeout); set before
  // the job's first task is submitted.
  [[nodiscard]] std::optional<std::chrono::nanoseconds> task_timeout() const noexcept { return task_timeout_; }
  void set_task_timeout(std::optional<std::chrono::nanoseconds> limit) noexcept { task_timeout_ = limit; }
  // Retries for each of this job's tasks, in place of the pool's (Retries); set likewise.
  [[nodiscard]] std::optional<int> retries() const noexcept {
    return retries_ < 0 ? std::nullopt : std::optional<int>(retries_);
  }
  void set_retries(std::optional<int> n) noexcept { retries_ = static_cast<std::int16_t>(n ? *n : -1); }

 protected:
  // Records the first error; the job fails with it.
  void record_error(const std::exception_ptr& e) noexcept;
  // Called after count items were recorded; the last one completes the job.
  void items_done(std::size_t count) noexcept;
  virtual void run_callbacks() = 0;
  [[nodiscard]] virtual bool has_callbacks() const noexcept { return false; }

 private:
  static constexpr std::uint32_t kPending = 0, kWaiting = 1, kDone = 2;

  // In this order, without padding between them: a ValueJob and its shared_ptr's count then fit
  // in 112 bytes of heap, not 128 (at 10000 fire-and-forget tasks, what the caches hold or not).
  JobHost* host_;
  std::atomic<std::size_t> remaining_;
  std::exception_ptr error_;  // written once, by whoever set failed_, before remaining_ reaches 0
  std::atomic<std::uint32_t> state_{kPending};
  std::atomic<bool> failed_{false};
  std::int16_t retries_ = -1;  // -1: the pool's; in what would be padding, so no job grows
  std::optional<std::chrono::nanoseconds> task_timeout_;
};

// Storage for one result per item. R that is not default-constructible, and bool (whose
// vector packs bits, so neighbours cannot be written from two threads), are kept in optionals.
template <class R>
using ResultSlot =
    std::conditional_t<std::is_default_constructible_v<R> && !std::is_same_v<R, bool>, R, std::optional<R>>;

// A job whose items' results a thread backend sets directly.
template <class R>
class TypedJob : public JobBase {
 public:
  using JobBase::JobBase;
  virtual void set_value(std::size_t index, R&& value) = 0;
  virtual void set_error(std::size_t index, const std::exception_ptr& e) = 0;
  // Results of items [first, first + count) as their bytes back to back (R is sent as its bytes).
  virtual void set_values(std::size_t first, std::size_t count, const std::byte* bytes) {
    if constexpr (std::is_trivially_copyable_v<R>) {
      for (std::size_t i = 0; i < count; ++i) {
        std::array<std::byte, sizeof(R)> one;
        std::memcpy(one.data(), bytes + i * sizeof(R), sizeof(R));
        set_value(first + i, std::bit_cast<R>(one));
      }
    }
  }
  // Called after a run of set_value/set_error calls for count items.
  void done(std::size_t count) noexcept { items_done(count); }

  void fail(std::size_t first, std::size_t count, const std::exception_ptr& e) final {
    for (std::size_t i = 0; i < count; ++i) set_error(first + i, e);
    items_done(count);
  }
};

// A job's callbacks, kept out of line: most calls have none, and a job that fits in fewer cache
// lines costs less to create and to hand from thread to thread.
template <class V>
class Callbacks {
 public:
  using OnValue = std::function<void(const V&)>;
  using OnError = std::function<void(std::exception_ptr)>;

  Callbacks(OnValue on_value, OnError on_error)
      : fns_(on_value || on_error ? new Fns{std::move(on_value), std::move(on_error)} : nullptr) {}

  [[nodiscard]] bool any() const noexcept { return fns_ != nullptr; }
  // The value callback, given value(), if the job succeeded; else the error callback.
  template <class GetValue>
  void run(const JobBase& job, GetValue&& value) const {
    if (!fns_) return;
    if (job.successful()) {
      if (fns_->on_value) fns_->on_value(std::forward<GetValue>(value)());
    } else if (fns_->on_error) {
      fns_->on_error(job.error());
    }
  }

 private:
  struct Fns {
    OnValue on_value;
    OnError on_error;
  };
  std::unique_ptr<Fns> fns_;
};

// One task (apply, apply_async).
template <class R>
class ValueJob final : public TypedJob<R> {
 public:
  using Callback = typename Callbacks<R>::OnValue;
  using ErrorCallback = typename Callbacks<R>::OnError;

  ValueJob(JobHost* host, Callback callback, ErrorCallback error_callback)
      : TypedJob<R>(host, 1), callbacks_(std::move(callback), std::move(error_callback)) {}

  void set_value(std::size_t, R&& value) override { value_.emplace(std::move(value)); }
  void set_error(std::size_t, const std::exception_ptr& e) override { this->record_error(e); }

  [[nodiscard]] const R& value() const { return *value_; }
  [[nodiscard]] R take() { return std::move(*value_); }
  [[nodiscard]] bool has_callbacks() const noexcept override { return callbacks_.any(); }

 private:
  void run_callbacks() override {
    callbacks_.run(*this, [this]() -> const R& { return *value_; });
  }

  std::optional<R> value_;
  Callbacks<R> callbacks_;
};

// Many tasks whose results are kept in input order (map, starmap and their async forms). The
// job completes when every item has reported, so no task still runs on the caller's data.
template <class R>
class ListJob final : public TypedJob<R> {
 public:
  using Callback = typename Callbacks<std::vector<R>>::OnValue;
  using ErrorCallback = typename Callbacks<std::vector<R>>::OnError;

  ListJob(JobHost* host, std::size_t n, Callback callback, ErrorCallback error_callback)
      : TypedJob<R>(host, n), slots_(n), callbacks_(std::move(callback), std::move(error_callback)) {}

  void set_value(std::size_t index, R&& value) override { slots_[index] = std::move(value); }
  void set_error(std::size_t, const std::exception_ptr& e) override { this->record_error(e); }
  void set_values(std::size_t first, std::size_t count, const std::byte* bytes) override {
    if constexpr (std::is_same_v<ResultSlot<R>, R> && std::is_trivially_copyable_v<R>) {
      if (count) std::memcpy(slots_.data() + first, bytes, count * sizeof(R));  // no items: data() may be null
    } else {
      TypedJob<R>::set_values(first, count, bytes);
    }
  }

  [[nodiscard]] std::vector<R> value() const { return gather(slots_); }
  [[nodiscard]] std::vector<R> take() {
    if constexpr (std::is_same_v<ResultSlot<R>, R>)
      return std::move(slots_);
    else
      return gather(std::move(slots_));
  }
  [[nodiscard]] bool has_callbacks() const noexcept override { return callbacks_.any(); }

 private:
  template <class Slots>
  static std::vector<R> gather(Slots&& slots) {
    if constexpr (std::is_same_v<ResultSlot<R>, R>) {
      return std::vector<R>(slots.begin(), slots.end());
    } else {
      std::vector<R> out;
      out.reserve(slots.size());
      for (auto& s : slots) {
        if constexpr (std::is_rvalue_reference_v<Slots&&>)
          out.push_back(std::move(*s));
        else
          out.push_back(*s);
      }
      return out;
    }
  }

  void run_callbacks() override {
    callbacks_.run(*this, [this] { return value(); });
  }

  std::vector<ResultSlot<R>> slots_;
  Callbacks<std::vector<R>> callbacks_;
};

// Results handed out as they come (imap: in input order; imap_unordered: in completion order).
// The consumer announces items as it submits them, so the total grows as input is pulled.
template <class R>
class StreamJob final : public TypedJob<R> {
 public:
  // Never completes as a whole: its items are taken one by one.
  StreamJob(JobHost* host, bool ordered) : TypedJob<R>(host, SIZE_MAX), ordered_(ordered) {}

  // Announces count more items, numbered on from the last; returns the first one's index.
  std::size_t expect(std::size_t count) {
    std::lock_guard lock(mu_);
    std::size_t first = expected_;
    expected_ += count;
    if (ordered_) results_.resize(expected_ - taken_);
    return first;
  }
  // Items announced and not yet taken.
  [[nodiscard]] std::size_t outstanding() {
    std::lock_guard lock(mu_);
    return expected_ - taken_;
  }
  void set_value(std::size_t index, R&& value) override {
    put(index, Outcome(std::in_place_index<0>, std::move(value)));
  }
  void set_error(std::size_t index, const std::exception_ptr& e) override {
    put(index, Outcome(std::in_place_index<1>, e));
  }

  // The next result, or its exception rethrown; nullopt when every announced item was taken.
  // Throws TimeoutError when none is ready by the deadline.
  std::optional<R> next(const Deadline& deadline);

  // A waiter is satisfied when a result can be taken, or when none can ever come.
  [[nodiscard]] bool satisfied() noexcept override {
    std::lock_guard lock(mu_);
    return has_next() || taken_ == expected_;
  }
  bool wait_plain(const Deadline& deadline) override;

 private:
  using Outcome = std::variant<R, std::exception_ptr>;

  void put(std::size_t index, Outcome&& outcome) {
    std::lock_guard lock(mu_);
    if (ordered_)
      results_[index - taken_] = std::move(outcome);
    else
      ready_.push_back(std::move(outcome));
    cv_.notify_all();
  }
  bool has_next() const {  // under mu_
    return ordered_ ? (!results_.empty() && results_.front().has_value()) : !ready_.empty();
  }
  void run_callbacks() override {}

  const bool ordered_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t expected_ = 0;                    // guarded by mu_
  std::size_t taken_ = 0;                       // guarded by mu_
  std::deque<std::optional<Outcome>> results_;  // ordered: items taken_.. expected_; guarded by mu_
  std::deque<Outcome> ready_;                   // unordered: arrived, not taken; guarded by mu_
};

// --- definitions -----------------------------------------------------------------------------

template <class R>
std::optional<R> StreamJob<R>::next(const Deadline& deadline) {
  for (;;) {
    std::unique_lock lock(mu_);
    if (has_next()) {
      Outcome outcome = ordered_ ? std::move(*results_.front()) : std::move(ready_.front());
      if (ordered_)
        results_.pop_front();
      else
        ready_.pop_front();
      ++taken_;
      lock.unlock();
      if (outcome.index() == 1) std::rethrow_exception(std::get<1>(outcome));
      return std::move(std::get<0>(outcome));
    }
    if (taken_ == expected_) return std::nullopt;
    lock.unlock();
    if (!this->wait(deadline)) throw TimeoutError("mproc: the next result was not ready in time");
  }
}

template <class R>
bool StreamJob<R>::wait_plain(const Deadline& deadline) {
  const std::uint64_t interrupts = interrupt_count();
  std::unique_lock lock(mu_);
  while (!(has_next() || taken_ == expected_)) {
    auto until = Clock::now() + kInterruptCheck;
    if (deadline && *deadline < until) until = *deadline;
    cv_.wait_until(lock, until);
    if (has_next() || taken_ == expected_) break;
    if (deadline && Clock::now() >= *deadline) return false;
    throw_if_interrupted(interrupts);
  }
  return true;
}

}  // namespace mproc::detail
