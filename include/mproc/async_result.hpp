/// @file
/// async_result.hpp: AsyncResult<T> — the handle to a task or a map submitted asynchronously
/// (apply_async, map_async, starmap_async), as Python's AsyncResult.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <utility>

#include "mproc/detail/job.hpp"

namespace mproc {

/// The result of apply_async (T is the function's result) or map_async / starmap_async (T is a
/// std::vector of them, in input order). Copies share one result; safe to use from several
/// threads at once; not usable in a forked child. It becomes ready after the callback has run,
/// so once ready() the value and the callback's effects are visible. A callback that throws
/// fails the result with its exception. Waiting from a callback of the same pool may throw
/// std::logic_error rather than deadlock.
template <class T>
class AsyncResult {
 public:
  /// Made by a pool: job is a ValueJob<T>, or a ListJob<E> when T is std::vector<E>.
  template <class Job>
  explicit AsyncResult(std::shared_ptr<Job> job) noexcept
      : job_(std::move(job)),
        value_([](const detail::JobBase& j) -> T { return static_cast<const Job&>(j).value(); }) {}

  /// A copy of the value, as often as asked; or rethrows the task's exception (for a map, the
  /// first failure reported). Blocks until ready; a process pool throws Interrupted on SIGINT
  /// where the program handles it.
  [[nodiscard]] T get() const;
  /// As get(), but throws TimeoutError when not ready within timeout.
  template <class Rep, class Period>
  [[nodiscard]] T get(std::chrono::duration<Rep, Period> timeout) const;

  /// Waits until ready, without throwing the task's exception.
  void wait() const { job_->wait(std::nullopt); }
  /// As wait(), at most timeout; returns ready().
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return job_->wait(detail::deadline_after(timeout));
  }
  /// Whether the task (every task of a map) has finished and its callback has run; never blocks.
  [[nodiscard]] bool ready() const noexcept { return job_->ready(); }
  /// Whether the task completed without an exception. Throws std::logic_error when not ready.
  [[nodiscard]] bool successful() const;

 private:
  T value() const {
    if (!job_->successful()) std::rethrow_exception(job_->error());
    return value_(*job_);
  }

  std::shared_ptr<detail::JobBase> job_;
  T (*value_)(const detail::JobBase&);
};

template <class T>
T AsyncResult<T>::get() const {
  job_->wait(std::nullopt);
  return value();
}

template <class T>
template <class Rep, class Period>
T AsyncResult<T>::get(std::chrono::duration<Rep, Period> timeout) const {
  if (!job_->wait(detail::deadline_after(timeout)))
    throw TimeoutError("mproc: AsyncResult::get: the result was not ready in time");
  return value();
}

template <class T>
bool AsyncResult<T>::successful() const {
  if (!job_->ready()) throw std::logic_error("mproc: AsyncResult::successful: the result is not ready");
  return job_->successful();
}

}  // namespace mproc
