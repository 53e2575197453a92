/// @file
/// async_result.hpp: AsyncResult<T> — the handle to a task or a map submitted asynchronously
/// (apply_async, map_async, starmap_async, submit), as Python's AsyncResult; also
/// concurrent.futures' Future (futures.hpp: Future<T> is AsyncResult<T>).
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "mproc/detail/job.hpp"

namespace mproc {

template <class T>
class AsyncResult;

namespace detail {
/// For apply: waits, and returns the value of the task whose only handle is result, moved out
/// of its job when nothing else holds the job any more (a 64 MB result is not copied again).
template <class T>
T take_apply_value(AsyncResult<T>&& result);
/// For futures.hpp's waits: a future's job.
struct FutureAccess {
  template <class T>
  static JobBase& job(const AsyncResult<T>& f) noexcept {
    return *f.job_;
  }
};
}  // namespace detail

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

  /// @name concurrent.futures' Future (futures.hpp)
  /// A cancelled or terminated task's result() and exception() throw CancelledError.
  ///@{
  /// As get(): the value, or the task's exception rethrown.
  [[nodiscard]] T result() const { return get(); }
  /// As get(timeout): TimeoutError when not done in time.
  template <class Rep, class Period>
  [[nodiscard]] T result(std::chrono::duration<Rep, Period> timeout) const {
    return get(timeout);
  }
  /// Waits until done; the task's exception, or null when it succeeded.
  [[nodiscard]] std::exception_ptr exception() const {
    wait();
    return error_now();
  }
  /// As exception(), at most timeout; TimeoutError when not done in time.
  template <class Rep, class Period>
  [[nodiscard]] std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const {
    if (!wait(timeout)) throw TimeoutError("mproc: Future::exception: the result was not ready in time");
    return error_now();
  }
  /// Whether it is done (finished, failed or cancelled) and its callbacks have run; never blocks.
  [[nodiscard]] bool done() const noexcept { return ready(); }
  /// Whether it runs now: started and not done. On Pool, a task may run a moment before this
  /// says so (its worker tells the parent only when asked by cancel() or by its result).
  [[nodiscard]] bool running() const { return job_->running(); }
  /// Whether cancel() or terminate() succeeded on it.
  [[nodiscard]] bool cancelled() const noexcept { return job_->cancelled(); }
  /// Keeps it from running: true when it had not started (on Pool: not claimed by a worker, even
  /// one that has it queued); it never runs, is done at once, and result() throws CancelledError.
  /// False once it started or is done. On a map_async or starmap_async result, every chunk not
  /// yet started is dropped (true when there was one): once the running ones end, result()
  /// throws CancelledError. Thread-safe; on MpiPool, false (a chunk is sent to its rank at once).
  bool cancel() { return job_->cancel(); }
  /// Stops it even while it runs; true when it was stopped or kept from running, and then
  /// result() throws CancelledError. See futures.hpp for what each pool can stop.
  bool terminate() { return job_->terminate(); }
  /// Calls fn(*this) once it is done: at once, on this thread, when it is done already; else on
  /// the thread that completes it (a pool thread, or one waiting for it). An exception fn throws
  /// is reported on stderr, never thrown on, and never ends a pool's thread.
  template <class Fn>
  requires std::is_invocable_v < Fn&, const AsyncResult<T>
  & > void add_done_callback(Fn fn) {
    job_->add_on_done([self = *this, fn = std::move(fn)]() mutable { fn(self); });
  }
  /// Whether a and b are copies of one future (share one state).
  friend bool operator==(const AsyncResult& a, const AsyncResult& b) noexcept { return a.job_ == b.job_; }
  ///@}

 private:
  friend struct detail::FutureAccess;

  std::exception_ptr error_now() const {
    if (job_->cancelled() || job_->successful()) {
      if (!job_->successful()) std::rethrow_exception(job_->error());
      return nullptr;
    }
    return job_->error();
  }

  T value() const {
    if (!job_->successful()) std::rethrow_exception(job_->error());
    return value_(*job_);
  }

  friend T detail::take_apply_value<T>(AsyncResult<T>&& result);

  std::shared_ptr<detail::JobBase> job_;
  T (*value_)(const detail::JobBase&);
};

template <class T>
T detail::take_apply_value(AsyncResult<T>&& result) {
  result.job_->wait(std::nullopt);
  if (!result.job_->successful()) std::rethrow_exception(result.job_->error());
  // The value is ours to move, though the thread that completed the job may still hold it: apply
  // hands out no future of the job and gives it no callbacks, so nobody else reads the value; a
  // backend sets it before it completes the job and afterwards only lets the job go. The write
  // came before the job was ready (wait()'s acquire).
  return static_cast<ValueJob<T>&>(*result.job_).take();  // apply's job is always a ValueJob
}

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
