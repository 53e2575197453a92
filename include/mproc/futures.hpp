/// @file
/// futures.hpp: concurrent.futures on every pool —
///
///     Future<T>                      the same type as AsyncResult<T>: one state, both vocabularies
///     ProcessPoolExecutor, ThreadPoolExecutor   Python's names for Pool and ThreadPool
///                                    (MPIPoolExecutor for MpiPool: mproc/mpi_pool.hpp)
///     as_completed(futures[, timeout])          the futures in the order they finish
///     wait(futures[, timeout][, return_when])   {done, not_done}: FIRST_COMPLETED,
///                                               FIRST_EXCEPTION or ALL_COMPLETED
/// Futures may come from one pool or several, and be apply_async, submit, map_async or
/// starmap_async results alike, as long as they share T. Neither call polls: each future tells
/// the caller's queue when it is done.
///
/// What terminate() stops: on Pool, a running task's worker is killed and replaced (the rest of
/// its work runs elsewhere); on ThreadPool, a task whose last parameter is std::stop_token gets
/// one, and terminate() asks it to stop (false for other tasks, once started); on MpiPool,
/// terminate() is cancel(): a task handed to its rank runs to its end, as a rank cannot be
/// stopped without ending the MPI job.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "mproc/async_result.hpp"
#include "mproc/detail/interrupt.hpp"
#include "mproc/detail/wait.hpp"
#include "mproc/errors.hpp"
#include "mproc/pool.hpp"
#include "mproc/thread_pool.hpp"

namespace mproc {

/// concurrent.futures' Future: AsyncResult<T> itself, so a Future is what apply_async returns.
template <class T>
using Future = AsyncResult<T>;

/// Python's names for the pools: the same types, so either vocabulary works on either.
using ProcessPoolExecutor = Pool;
/// Python's name for ThreadPool: the same type.
using ThreadPoolExecutor = ThreadPool;

/// When wait() returns (concurrent.futures' return_when).
enum class ReturnWhen {
  first_completed,  ///< as soon as any future is done
  first_exception,  ///< as soon as any future fails (a cancelled one does not count), else when all are done
  all_completed,    ///< when every future is done
};
/// Python's names for the ReturnWhen values.
///@{
inline constexpr ReturnWhen FIRST_COMPLETED = ReturnWhen::first_completed;
inline constexpr ReturnWhen FIRST_EXCEPTION = ReturnWhen::first_exception;
inline constexpr ReturnWhen ALL_COMPLETED = ReturnWhen::all_completed;
///@}

/// What wait() returns: the futures done when it returned, and the others, each in input order.
template <class T>
struct WaitResult {
  std::vector<Future<T>> done;      ///< done (finished, failed or cancelled) when wait() returned
  std::vector<Future<T>> not_done;  ///< the others
};

namespace detail {

/// Where the futures of one as_completed or wait call report that they are done: the index of
/// each, in the order they finished. Safe to push from any thread; taken by one thread, in
/// batches (a lock per batch, not per future). It is a job itself, done when some future is, so
/// that on a process pool whose waiters collect results, the caller waiting for it collects them
/// meanwhile, as get() does (JobHost::wait): then no thread wakes another for each result.
class CompletionQueue final : public JobBase {
 public:
  /// host: the one pool of every future not yet done, when its waiters collect
  /// (JobHost::waiter_collects); else null, and a waiter sleeps until a future says it is done.
  explicit CompletionQueue(JobHost* host) : JobBase(host, 1) {}

  void push(std::size_t index) {
    std::lock_guard lock(mu_);
    done_.push_back(index);
    announce();
  }
  void push(const std::vector<std::size_t>& indices) {
    std::lock_guard lock(mu_);
    done_.insert(done_.end(), indices.begin(), indices.end());
    announce();
  }
  /// Waits until some index came, then moves every index that came into out (empty before); false
  /// when none came by the deadline. Throws Interrupted.
  bool take(std::vector<std::size_t>& out, const Deadline& deadline) {
    if (!wait(deadline)) return false;
    std::lock_guard lock(mu_);
    out.swap(done_);
    available_.store(false, std::memory_order_relaxed);
    return true;
  }

  [[nodiscard]] bool satisfied() noexcept override { return available_.load(std::memory_order_acquire); }
  bool wait_plain(const Deadline& deadline) override;
  void fail(std::size_t, std::size_t, const std::exception_ptr&) override {}  // never: it runs nothing

 private:
  void run_callbacks() override {}
  void announce() {  // under mu_
    available_.store(true, std::memory_order_release);
    if (waiting_) cv_.notify_one();  // no sleeper, no system call
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::size_t> done_;       // guarded by mu_
  bool waiting_ = false;                // guarded by mu_
  std::atomic<bool> available_{false};  // !done_.empty(); written under mu_, read by a collecting waiter
};

inline bool CompletionQueue::wait_plain(const Deadline& deadline) {
  const std::uint64_t interrupts = interrupts_at_start();
  std::unique_lock lock(mu_);
  while (done_.empty()) {
    if (passed(deadline)) return false;
    auto until = Clock::now() + kInterruptCheck;
    if (deadline && *deadline < until) until = *deadline;
    waiting_ = true;
    cv_.wait_until(lock, until);
    waiting_ = false;
    if (done_.empty()) throw_if_interrupted(interrupts);
  }
  return true;
}

/// The pool whose waiters should wait for futures: the one pool of all those not yet done, when
/// its waiters collect results; else null. (A done future's pool may be gone: not asked.)
template <class T>
JobHost* collecting_host(const std::vector<Future<T>>& futures) {
  JobHost* host = nullptr;
  for (const auto& f : futures) {
    const JobBase& job = FutureAccess::job(f);
    if (job.ready()) continue;
    if (host && job.host() != host) return nullptr;
    host = job.host();
  }
  return host && host->waiter_collects() ? host : nullptr;
}

/// The indices of a call's futures as they finish, taken from its CompletionQueue a batch at a time.
/// The futures must outlive it: when it goes, it takes back the done callbacks it left on those
/// not yet done, so that a loop of wait(FIRST_COMPLETED) calls leaves one per future, not one per call.
class CompletionOrder {
 public:
  template <class T>
  explicit CompletionOrder(const std::vector<Future<T>>& futures)
      : queue_(std::make_shared<CompletionQueue>(collecting_host(futures))) {
    report_to(futures);
  }
  CompletionOrder(CompletionOrder&&) noexcept = default;  // the moved-from one's waiting_ is empty
  CompletionOrder& operator=(CompletionOrder&&) = delete;
  ~CompletionOrder() {
    for (auto& [job, key] : waiting_) job->remove_on_done(key);
  }
  /// The next index; nullopt when none came by the deadline. Throws Interrupted.
  std::optional<std::size_t> next(const Deadline& deadline) {
    if (at_ == batch_.size()) {
      batch_.clear();
      at_ = 0;
      if (!queue_->take(batch_, deadline)) return std::nullopt;
    }
    return batch_[at_++];
  }

 private:
  /// Has each future push its index to the queue once done: those done already at once, together
  /// (no callback to make, and one lock), the others from a done callback.
  template <class T>
  void report_to(const std::vector<Future<T>>& futures) {
    std::vector<std::size_t> done;
    for (std::size_t i = 0; i < futures.size(); ++i) {
      JobBase& job = FutureAccess::job(futures[i]);
      if (job.ready()) {
        done.push_back(i);
      } else if (const std::uint64_t key = job.add_on_done([queue = queue_, i] { queue->push(i); })) {
        if (waiting_.empty()) waiting_.reserve(futures.size() - i);
        waiting_.emplace_back(&job, key);
      }
    }
    if (!done.empty()) queue_->push(done);
  }

  std::shared_ptr<CompletionQueue> queue_;  // shared with the futures' callbacks, which may outlive this
  std::vector<std::pair<JobBase*, std::uint64_t>> waiting_;  // each callback left, by its job and key
  std::vector<std::size_t> batch_;
  std::size_t at_ = 0;
};

/// Python's as_completed and wait take a set: a future given more than once counts once. Keeps
/// each future's first place. Most calls repeat none, which one sort of the jobs says.
template <class T>
std::vector<Future<T>> without_repeats(std::vector<Future<T>> futures) {
  std::vector<const JobBase*> jobs;
  jobs.reserve(futures.size());
  for (const auto& f : futures) jobs.push_back(&FutureAccess::job(f));
  std::ranges::sort(jobs);
  if (std::ranges::adjacent_find(jobs) == jobs.end()) return futures;
  std::unordered_set<const JobBase*> seen;
  std::erase_if(futures, [&seen](const Future<T>& f) { return !seen.insert(&FutureAccess::job(f)).second; });
  return futures;
}

/// The range as_completed returns: each future once, as it finishes (those already done first).
/// Single pass; iterating waits. TimeoutError from the iteration when the time given to
/// as_completed runs out before the last future is done.
template <class T>
class AsCompleted {
 public:
  class iterator {
   public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = Future<T>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(AsCompleted* range) : range_(range) {}
    Future<T>& operator*() const { return range_->futures_[range_->current_]; }
    iterator& operator++() {
      range_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const { return range_->yielded_ > range_->futures_.size(); }

   private:
    AsCompleted* range_ = nullptr;
  };

  AsCompleted(std::vector<Future<T>> futures, Deadline deadline)
      : futures_(without_repeats(std::move(futures))), deadline_(deadline), order_(futures_) {}
  /// Starts the iteration; call once.
  iterator begin() {
    advance();
    return iterator(this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  void advance() {
    if (yielded_++ == futures_.size()) return;  // past the last: the end
    std::optional<std::size_t> next = order_.next(deadline_);
    if (!next)
      throw TimeoutError("mproc: as_completed: " + std::to_string(futures_.size() - yielded_ + 1) + " of " +
                         std::to_string(futures_.size()) + " futures were not done in time");
    current_ = *next;
  }

  std::vector<Future<T>> futures_;
  Deadline deadline_;
  CompletionOrder order_;
  std::size_t yielded_ = 0;  // futures handed out, counting the current one
  std::size_t current_ = 0;
};

}  // namespace detail

/// The futures, in the order they finish (Python's as_completed); one given twice comes once.
template <class T>
detail::AsCompleted<T> as_completed(std::vector<Future<T>> futures) {
  return detail::AsCompleted<T>(std::move(futures), std::nullopt);
}
/// As as_completed(futures); the iteration throws TimeoutError when the futures are not all done
/// within timeout of this call.
template <class T, class Rep, class Period>
detail::AsCompleted<T> as_completed(std::vector<Future<T>> futures, std::chrono::duration<Rep, Period> timeout) {
  return detail::AsCompleted<T>(std::move(futures), detail::deadline_after(timeout));
}

namespace detail {
template <class T>
WaitResult<T> wait_until(std::vector<Future<T>> futures, const Deadline& deadline, ReturnWhen when) {
  futures = without_repeats(std::move(futures));
  {
    CompletionOrder order(futures);  // gone, and its callbacks with it, before the futures move
    for (std::size_t finished = 0; finished < futures.size(); ++finished) {
      std::optional<std::size_t> i = order.next(deadline);
      if (!i) break;
      const Future<T>& f = futures[*i];
      if (when == ReturnWhen::first_completed) break;
      if (when == ReturnWhen::first_exception && !f.cancelled() && !f.successful()) break;
    }
  }
  WaitResult<T> out;
  for (auto& f : futures) (f.done() ? out.done : out.not_done).push_back(std::move(f));
  return out;
}
}  // namespace detail

/// Waits until return_when says, or, with a timeout, at most that long; then splits the futures
/// into those done and those not (Python's concurrent.futures.wait). A future given twice is in
/// the result once, at its first place. Throws Interrupted.
///@{
template <class T>
WaitResult<T> wait(std::vector<Future<T>> futures, ReturnWhen return_when = ALL_COMPLETED) {
  return detail::wait_until(std::move(futures), std::nullopt, return_when);
}
template <class T, class Rep, class Period>
WaitResult<T> wait(std::vector<Future<T>> futures, std::chrono::duration<Rep, Period> timeout,
                   ReturnWhen return_when = ALL_COMPLETED) {
  return detail::wait_until(std::move(futures), detail::deadline_after(timeout), return_when);
}
///@}

}  // namespace mproc
