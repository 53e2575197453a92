// async_result.hpp: AsyncResult<T> — the handle to a task or a map submitted asynchronously.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <utility>

#include "mproc/detail/job.hpp"

namespace mproc {

// The result of apply_async (T is the function's result) or map_async / starmap_async (T is a
// std::vector of them), as Python's AsyncResult. Copies share one result. Safe to use from
// several threads at once. Once ready(), the value and any callback's effects are visible.
template <class T>
class AsyncResult {
 public:
  // Made by a pool: job is a ValueJob<T>, or a ListJob<E> when T is std::vector<E>.
  template <class Job>
  explicit AsyncResult(std::shared_ptr<Job> job) noexcept
      : job_(std::move(job)), value_([](const detail::JobBase& j) -> T { return static_cast<const Job&>(j).value(); }) {}

  // The value; rethrows the task's exception. Blocks until ready.
  [[nodiscard]] T get() const;
  // As get(), but throws TimeoutError when not ready within timeout.
  template <class Rep, class Period>
  [[nodiscard]] T get(std::chrono::duration<Rep, Period> timeout) const;

  void wait() const { job_->wait(std::nullopt); }
  // Returns whether the result is ready.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return job_->wait(detail::deadline_after(timeout));
  }
  [[nodiscard]] bool ready() const noexcept { return job_->ready(); }
  // Whether the task completed without an exception. Throws std::logic_error when not ready.
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
  if (!job_->wait(detail::deadline_after(timeout))) throw TimeoutError("mproc: AsyncResult::get: the result was not ready in time");
  return value();
}

template <class T>
bool AsyncResult<T>::successful() const {
  if (!job_->ready()) throw std::logic_error("mproc: AsyncResult::successful: the result is not ready");
  return job_->successful();
}

}  // namespace mproc
