/// @file
/// basic_pool.hpp: BasicPool<Backend> — Python's Pool API (apply, map, starmap, imap and their
/// async forms, close, join, terminate), written once over any backend. Pool, ThreadPool and
/// MpiPool are this template over their backends; see pool.hpp and thread_pool.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/async_result.hpp"
#include "mproc/detail/backend.hpp"
#include "mproc/detail/checks.hpp"
#include "mproc/detail/insights_recorder.hpp"
#include "mproc/detail/interrupt.hpp"
#include "mproc/detail/invoke.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/job_allocator.hpp"
#include "mproc/errors.hpp"
#include "mproc/insights.hpp"
#include "mproc/pool_options.hpp"
#include "mproc/progress.hpp"
#include "mproc/shared_heap.hpp"

namespace mproc {

namespace detail {
template <class Pool, Style S, class Fn, class V>
class ImapRange;

/// The result of apply(f, args): f(std::get<0>(args), ...). Computed without error for a misuse,
/// so that the call's own check reports it (see checks.hpp).
template <class F, class Args>
using apply_result_t = task_result_t<Style::star, std::decay_t<F>, std::decay_t<Args>>;
/// Whether submit(f, args...) gives f a std::stop_token after args (ThreadPool's terminate()).
template <class F, class... A>
inline constexpr bool takes_stop_token =
    std::is_invocable_v<const std::decay_t<F>&, const std::decay_t<A>&..., std::stop_token> &&
    !std::is_invocable_v<const std::decay_t<F>&, const std::decay_t<A>&...>;
template <class F, class... A>
struct submit_result {
  using type = apply_result_t<F, std::tuple<std::decay_t<A>...>>;
};
template <class F, class... A>
requires takes_stop_token<F, A...>
struct submit_result<F, A...> {
  using raw = std::invoke_result_t<const std::decay_t<F>&, const std::decay_t<A>&..., std::stop_token>;
  using type = std::conditional_t<std::is_void_v<raw>, None, std::decay_t<raw>>;
};
/// What submit(f, args...)'s future holds.
template <class F, class... A>
using submit_result_t = typename submit_result<F, A...>::type;
/// The element of map's (S = single) or starmap's (S = star) result.
template <Style S, class F, class Range>
using map_result_t = task_result_t<S, std::decay_t<F>, std::ranges::range_value_t<Range>>;
}  // namespace detail

/// A pool of workers running tasks; the API and meanings of Python's multiprocessing.Pool.
/// Thread safety: every member may be called from several threads at once.
/// Guarantees: map and imap keep input order; callbacks run once each, on a pool thread, one
/// at a time; the destructor finishes all submitted work (close() then join()).
/// Backend: a detail::PoolBackend (see detail/backend.hpp), such as detail::ProcessBackend.
template <class Backend>
class BasicPool {
  static_assert(detail::PoolBackend<Backend>,
                "mproc: BasicPool<Backend>: Backend is not a pool backend (detail::PoolBackend in "
                "mproc/detail/backend.hpp); the notes below name what it lacks");
  static_assert(!detail::backend_traits<Backend>::reads_in_place || detail::InPlaceReader<Backend>,
                "mproc: a backend that reads_in_place needs shares(p, bytes) and submit_in_place<S>(job, fn, items, "
                "first)");

 public:
  /// Starts the workers: as many as processes (default: process_cpu_count()), or as options say.
  /// A bad option throws std::invalid_argument; an initializer that throws in a first worker
  /// makes the constructor throw its exception.
  ///@{
  BasicPool() : BasicPool(PoolOptions{}) {}
  explicit BasicPool(int processes) : BasicPool(PoolOptions{.processes = processes}) {}
  explicit BasicPool(PoolOptions options) : backend_(std::move(options)) {}
  ///@}
  BasicPool(const BasicPool&) = delete;
  BasicPool& operator=(const BasicPool&) = delete;
  /// close() then join(): submitted work is finished, never dropped.
  ~BasicPool() { backend_.shutdown(); }

  /// f(args...) on a worker; returns its result or rethrows its exception.
  template <class F, class Args = std::tuple<>>
  detail::apply_result_t<F, Args> apply(F&& f, Args&& args = {});

  /// As apply, without waiting: returns at once. callback gets the result, or error_callback
  /// the exception, once, on a pool thread, before the AsyncResult becomes ready.
  template <class F, class Args = std::tuple<>>
  AsyncResult<detail::apply_result_t<F, Args>> apply_async(
      F&& f, Args&& args = {}, typename detail::ValueJob<detail::apply_result_t<F, Args>>::Callback callback = {},
      std::function<void(std::exception_ptr)> error_callback = {});

  /// As apply and apply_async, with a time limit or retries for this task (see TaskLimits).
  ///@{
  template <class F, class Args>
  detail::apply_result_t<F, Args> apply(F&& f, Args&& args, TaskLimits limit);
  template <class F, class Args>
  AsyncResult<detail::apply_result_t<F, Args>> apply_async(
      F&& f, Args&& args, TaskLimits limit,
      typename detail::ValueJob<detail::apply_result_t<F, Args>>::Callback callback = {},
      std::function<void(std::exception_ptr)> error_callback = {});
  ///@}

  /// [f(x) for x in range], computed in chunks (chunksize 0: Python's default, n / (4 x workers)
  /// rounded up). The input may be any input range; it is read here, in the caller's thread.
  /// One exception, for speed: a Pool's workers read items that lie in the shared heap (an
  /// mproc::Array, or pmr containers made with mproc::shared_resource()) where they are, without
  /// a copy (map, starmap and their async forms); so leave such items unchanged until the
  /// call's results are ready.
  template <class F, std::ranges::input_range Range>
  std::vector<detail::map_result_t<detail::Style::single, F, Range>> map(F&& f, Range&& range,
                                                                         std::size_t chunksize = 0);

  /// As map, without waiting: callback gets the whole result vector, or error_callback the first
  /// failure, once, on a pool thread, before the AsyncResult becomes ready.
  template <class F, std::ranges::input_range Range>
  AsyncResult<std::vector<detail::map_result_t<detail::Style::single, F, Range>>> map_async(
      F&& f, Range&& range, std::size_t chunksize = 0,
      typename detail::ListJob<detail::map_result_t<detail::Style::single, F, Range>>::Callback callback = {},
      std::function<void(std::exception_ptr)> error_callback = {});

  /// As map and map_async, with a time limit or retries for each chunk (see TaskLimits).
  ///@{
  template <class F, std::ranges::input_range Range>
  std::vector<detail::map_result_t<detail::Style::single, F, Range>> map(F&& f, Range&& range, std::size_t chunksize,
                                                                         TaskLimits limit);
  template <class F, std::ranges::input_range Range>
  AsyncResult<std::vector<detail::map_result_t<detail::Style::single, F, Range>>> map_async(
      F&& f, Range&& range, std::size_t chunksize, TaskLimits limit,
      typename detail::ListJob<detail::map_result_t<detail::Style::single, F, Range>>::Callback callback = {},
      std::function<void(std::exception_ptr)> error_callback = {});
  ///@}

  /// [f(a, b, ...) for (a, b, ...) in range]; items are tuples, pairs or arrays.
  template <class F, std::ranges::input_range Range>
  std::vector<detail::map_result_t<detail::Style::star, F, Range>> starmap(F&& f, Range&& range,
                                                                           std::size_t chunksize = 0);

  /// As starmap, without waiting; callbacks as for map_async.
  template <class F, std::ranges::input_range Range>
  AsyncResult<std::vector<detail::map_result_t<detail::Style::star, F, Range>>> starmap_async(
      F&& f, Range&& range, std::size_t chunksize = 0,
      typename detail::ListJob<detail::map_result_t<detail::Style::star, F, Range>>::Callback callback = {},
      std::function<void(std::exception_ptr)> error_callback = {});

  /// As starmap and starmap_async, with a time limit or retries for each chunk (see TaskLimits).
  ///@{
  template <class F, std::ranges::input_range Range>
  std::vector<detail::map_result_t<detail::Style::star, F, Range>> starmap(F&& f, Range&& range, std::size_t chunksize,
                                                                           TaskLimits limit);
  template <class F, std::ranges::input_range Range>
  AsyncResult<std::vector<detail::map_result_t<detail::Style::star, F, Range>>> starmap_async(
      F&& f, Range&& range, std::size_t chunksize, TaskLimits limit,
      typename detail::ListJob<detail::map_result_t<detail::Style::star, F, Range>>::Callback callback = {},
      std::function<void(std::exception_ptr)> error_callback = {});
  ///@}

  /// As map and starmap, writing item i's result to out[i] instead of a new vector: out is a
  /// contiguous range of the function's result type, as many as the items (else
  /// std::invalid_argument, before any task runs), such as a std::pmr::vector made with
  /// mproc::shared_resource(). When out lies in the shared heap and the result is trivially
  /// copyable, a process Pool's workers write the results there themselves: nothing crosses
  /// back, and no result vector is made or zero-filled. Returns once every item ran; a task's
  /// exception is rethrown (out then holds the results that arrived). No task runs on out
  /// after the call returns or throws.
  ///@{
  template <class F, std::ranges::input_range Range, std::ranges::contiguous_range Out>
  requires std::ranges::sized_range<Out>
  void map_into(F&& f, Range&& range, Out&& out, std::size_t chunksize = 0) {
    run_into<detail::Style::single>(std::forward<F>(f), std::forward<Range>(range), std::span(out), chunksize);
  }
  template <class F, std::ranges::input_range Range, std::ranges::contiguous_range Out>
  requires std::ranges::sized_range<Out>
  void starmap_into(F&& f, Range&& range, Out&& out, std::size_t chunksize = 0) {
    run_into<detail::Style::star>(std::forward<F>(f), std::forward<Range>(range), std::span(out), chunksize);
  }
  ///@}

  /// A lazy range of f(x) in input order. Input is read as results are consumed, up to
  /// max(64, 8 x workers) chunks ahead; an exception from the input or from a task is thrown
  /// where the loop reaches it: an input that throws at item k first gives the results of the
  /// items before k (imap_unordered: all of them, in completion order), then throws, then ends.
  /// A range taken by lvalue reference must outlive the returned range.
  template <class F, std::ranges::input_range Range>
  auto imap(F&& f, Range&& range, std::size_t chunksize = 1);
  /// As imap, in completion order.
  template <class F, std::ranges::input_range Range>
  auto imap_unordered(F&& f, Range&& range, std::size_t chunksize = 1);

  /// @name Progress
  /// The calls above with a Progress as their last argument: a bar on stderr, or on_update
  /// called, as their chunks finish (see progress.hpp).
  ///@{
  template <class F, std::ranges::input_range Range>
  std::vector<detail::map_result_t<detail::Style::single, F, Range>> map(F&& f, Range&& range, std::size_t chunksize,
                                                                         Progress progress);
  template <class F, std::ranges::input_range Range>
  std::vector<detail::map_result_t<detail::Style::single, F, Range>> map(F&& f, Range&& range, std::size_t chunksize,
                                                                         TaskLimits limit, Progress progress);
  template <class F, std::ranges::input_range Range>
  AsyncResult<std::vector<detail::map_result_t<detail::Style::single, F, Range>>> map_async(
      F&& f, Range&& range, std::size_t chunksize,
      typename detail::ListJob<detail::map_result_t<detail::Style::single, F, Range>>::Callback callback,
      std::function<void(std::exception_ptr)> error_callback, Progress progress);
  template <class F, std::ranges::input_range Range>
  AsyncResult<std::vector<detail::map_result_t<detail::Style::single, F, Range>>> map_async(
      F&& f, Range&& range, std::size_t chunksize, TaskLimits limit,
      typename detail::ListJob<detail::map_result_t<detail::Style::single, F, Range>>::Callback callback,
      std::function<void(std::exception_ptr)> error_callback, Progress progress);
  template <class F, std::ranges::input_range Range>
  std::vector<detail::map_result_t<detail::Style::star, F, Range>> starmap(F&& f, Range&& range, std::size_t chunksize,
                                                                           Progress progress);
  template <class F, std::ranges::input_range Range>
  std::vector<detail::map_result_t<detail::Style::star, F, Range>> starmap(F&& f, Range&& range, std::size_t chunksize,
                                                                           TaskLimits limit, Progress progress);
  template <class F, std::ranges::input_range Range>
  AsyncResult<std::vector<detail::map_result_t<detail::Style::star, F, Range>>> starmap_async(
      F&& f, Range&& range, std::size_t chunksize,
      typename detail::ListJob<detail::map_result_t<detail::Style::star, F, Range>>::Callback callback,
      std::function<void(std::exception_ptr)> error_callback, Progress progress);
  template <class F, std::ranges::input_range Range>
  AsyncResult<std::vector<detail::map_result_t<detail::Style::star, F, Range>>> starmap_async(
      F&& f, Range&& range, std::size_t chunksize, TaskLimits limit,
      typename detail::ListJob<detail::map_result_t<detail::Style::star, F, Range>>::Callback callback,
      std::function<void(std::exception_ptr)> error_callback, Progress progress);
  /// For imap, the total is the input's size when it has one, else known when the input ends.
  template <class F, std::ranges::input_range Range>
  auto imap(F&& f, Range&& range, std::size_t chunksize, Progress progress);
  template <class F, std::ranges::input_range Range>
  auto imap_unordered(F&& f, Range&& range, std::size_t chunksize, Progress progress);
  ///@}

  /// @name Insights
  /// Where the pool's time went so far (PoolOptions::insights), and every chunk as a Chrome
  /// trace (Perfetto, chrome://tracing: a track per worker, a slice per chunk, deaths and
  /// replacements as instant events). Without PoolOptions::insights, std::logic_error.
  ///@{
  [[nodiscard]] Insights insights() const { return recorder().snapshot(); }
  /// Throws std::runtime_error naming path when it cannot be written.
  void write_trace(const std::string& path) const { recorder().write_trace(path); }
  ///@}

  /// No more submissions; workers exit when the submitted work is done.
  void close() { backend_.close(); }
  /// Waits for the workers to exit; call close() or terminate() first (else std::logic_error).
  void join() { backend_.join(); }
  /// Stops the workers now; work not yet finished fails with PoolNotRunning.
  void terminate() { backend_.terminate(); }

  /// @name concurrent.futures (futures.hpp)
  ///@{
  /// f(args...) on a worker, the arguments as they are (copied, or on Pool encoded, at once);
  /// returns its Future (an AsyncResult) at once. As apply_async(f, std::tuple{args...}).
  /// On ThreadPool, an f whose last parameter is a std::stop_token gets one, which the future's
  /// terminate() asks to stop.
  template <class F, class... A>
  AsyncResult<detail::submit_result_t<F, A...>> submit(F&& f, A&&... args);
  /// As imap and imap_unordered, with at most buffersize chunks read ahead of the consumer and in
  /// flight (Python 3.14's buffersize), for endless or huge inputs; 0: the default window. A
  /// range dropped before its end cancels the chunks it had not consumed that have not started.
  ///@{
  template <class F, std::ranges::input_range Range>
  auto imap(F&& f, Range&& range, std::size_t chunksize, std::size_t buffersize);
  template <class F, std::ranges::input_range Range>
  auto imap_unordered(F&& f, Range&& range, std::size_t chunksize, std::size_t buffersize);
  ///@}
  /// Python's Executor.shutdown: no more submissions (close()); with cancel_futures, every task
  /// and chunk not yet started is cancelled (its future throws CancelledError) while running ones
  /// finish; with wait, returns once the workers are done (join()).
  void shutdown(bool wait = true, bool cancel_futures = false);
  ///@}

  /// The number of workers, as built (replacements keep it).
  [[nodiscard]] unsigned processes() const noexcept { return backend_.size(); }
  /// The backend itself, for tests and tools; not part of the Pool API.
  [[nodiscard]] Backend& backend() noexcept { return backend_; }

 private:
  template <class, detail::Style, class, class>
  friend class detail::ImapRange;

  /// What an asynchronous call on a backend that does not copy arguments keeps alive.
  template <class Fn, class Items>
  struct Owned {
    Fn fn;
    Items items;
  };

  using Traits = detail::backend_traits<Backend>;
  using Limit = TaskLimits;  // a call's TaskLimits, checked

  /// Checks a call of F on Item once, where it enters, before anything that would fail on a misuse
  /// is instantiated: false after the static_assert naming the misuse failed.
  template <detail::Call C, class F, class Item>
  static constexpr bool accepts() {
    return detail::accept<detail::misuse<Backend::sends_functions, C, std::decay_t<F>, Item>()>();
  }
  static Limit checked(TaskLimits limit);
  /// imap or imap_unordered.
  template <class F, class Range>
  auto start_imap(F&& f, Range&& range, std::size_t chunksize, bool ordered, std::size_t buffersize = 0);
  /// A synchronous call left by an exception (or a failed item): what it had not started is
  /// cancelled; what runs finishes, waited for when tasks read the caller's items in place.
  template <class Job>
  void abandon(Job& job) noexcept;
  /// Waits until every task of job ended, whatever comes meanwhile: tasks that write into the
  /// caller's memory (map_into) end before the caller unwinds.
  template <class Job>
  static void finish(Job& job) noexcept {
    while (!job.ready()) {
      try {
        job.wait(std::nullopt);
      } catch (...) {
      }
    }
  }
  template <class F, class Args, class R = detail::apply_result_t<F, Args>>
  AsyncResult<R> start_apply(F&& f, Args&& args, Limit limit, typename detail::ValueJob<R>::Callback callback,
                             std::function<void(std::exception_ptr)> error_callback);
  template <detail::Style S, bool Sync, class F, class Range, class R = detail::map_result_t<S, F, Range>>
  std::shared_ptr<detail::ListJob<R>> start_list(F&& f, Range&& range, std::size_t chunksize, Limit limit,
                                                 typename detail::ListJob<R>::Callback callback,
                                                 std::function<void(std::exception_ptr)> error_callback);
  /// Submits f over range's items as start_list does, to the job make_job(n) makes once the
  /// number of items n is known; returns that job.
  template <detail::Style S, bool Sync, class F, class Range, class MakeJob>
  auto start_items(F&& f, Range&& range, std::size_t chunksize, MakeJob&& make_job);
  /// map_into or starmap_into.
  template <detail::Style S, class F, class Range, class R>
  void run_into(F&& f, Range&& range, std::span<R> out, std::size_t chunksize);
  /// map_async or starmap_async.
  template <detail::Style S, class F, class Range, class R = detail::map_result_t<S, F, Range>>
  AsyncResult<std::vector<R>> start_async(F&& f, Range&& range, std::size_t chunksize, Limit limit,
                                          typename detail::ListJob<R>::Callback callback,
                                          std::function<void(std::exception_ptr)> error_callback);
  /// A synchronous map or starmap: its results, or the first failure rethrown.
  template <detail::Style S, class F, class Range>
  std::vector<detail::map_result_t<S, F, Range>> run_list(F&& f, Range&& range, std::size_t chunksize, Limit limit,
                                                          std::optional<Progress> progress = std::nullopt);
  /// Whether the workers will read range's items where they are, in the shared heap, not copies.
  template <class Range>
  bool reads_in_place(const Range& range) const;
  /// Waits for a synchronous call's job (map, starmap, their _into forms) in slices, to see a
  /// failed item before the rest have run: the call fails with it anyway. Left early, by a failed
  /// item or by Interrupted, it cancels what has not started, and the tasks still running end
  /// before the caller unwinds when they touch its memory (they read its items in place, or write
  /// into its out): waited for after a failed item; after Interrupted, stopped where the backend
  /// can kill tasks (a Ctrl-C is not held up by a long task), waited for where it cannot.
  template <class Job>
  void await_call(Job& job, bool touches_caller_memory);
  /// Submits items as chunks of chunksize (0: default_chunksize), the first of them item first of
  /// job. InPlace: the backend's workers read the items where they are (see reads_in_place).
  /// InPlace with heap_checked: every item is known to refer to the heap only (a pmr container's
  /// items, items_inherit_heap), else each chunk's items are looked at.
  template <detail::Style S, bool InPlace, class Job, class Fn, class Item>
  void submit(const std::shared_ptr<Job>& job, const Fn& fn, std::span<const Item> items, std::size_t first,
              std::size_t chunksize, const std::shared_ptr<const void>& keep_alive, bool heap_checked = false);
  // A map's results of at least these many bytes are written by a process pool's workers into a
  // block of the shared heap (see start_list).
  static constexpr std::size_t kResultsInHeapMin = std::size_t{64} << 10;
  // Whether results of type R may be written so (a backend that reads in place only: the trait
  // is defined with the codec, which a ThreadPool program does not include).
  template <class R>
  static constexpr bool heap_results() {
    if constexpr (Traits::reads_in_place)
      return detail::is_placeable<R>::value && detail::ListJob<R>::can_use_block;
    else
      return false;
  }
  // A block of the heap for n values of R, or nullptr when the heap is full.
  template <class R>
  static R* heap_block(std::size_t n) noexcept {
    try {
      return static_cast<R*>(shared_resource()->allocate(n * sizeof(R), alignof(R)));
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
  }
  [[nodiscard]] std::size_t default_chunksize(std::size_t n) const noexcept {
    std::size_t per = std::size_t{4} * backend_.size();
    return std::max<std::size_t>(1, (n + per - 1) / per);
  }
  /// The backend's record of insights; std::logic_error when it keeps none.
  const detail::InsightsRecorder& recorder() const {
    const detail::InsightsRecorder* r = nullptr;
    if constexpr (requires { backend_.insights(); }) r = backend_.insights();
    if (!r)
      throw std::logic_error(
          "mproc: insights and traces are recorded only when the pool is built with PoolOptions{.insights = true}");
    return *r;
  }
  /// A map's or starmap's job, counted by a meter from now on (Progress).
  template <class Job>
  static std::shared_ptr<Job> watched(std::shared_ptr<Job> job, Progress&& progress) {
    job->watch(detail::start_progress(std::move(progress), job->size()));
    return job;
  }
  Backend backend_;
};

namespace detail {

/// The range imap and imap_unordered return: single pass, each result once.
template <class Pool, Style S, class Fn, class V>
class ImapRange {
 public:
  using Item = std::ranges::range_value_t<V>;
  using R = task_result_t<S, Fn, Item>;

  class iterator {
   public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(ImapRange* range) : range_(range) {}
    R& operator*() const { return *range_->current_; }
    iterator& operator++() {
      range_->current_ = range_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const { return !range_->current_; }

   private:
    ImapRange* range_ = nullptr;
  };

  ImapRange(Pool& pool, Fn fn, V input, std::size_t chunksize, bool ordered, std::size_t buffersize = 0);
  ImapRange(ImapRange&&) noexcept = default;
  ImapRange& operator=(ImapRange&&) noexcept = default;
  /// Dropped before its end: the chunks it read ahead and that have not started never run.
  ~ImapRange() {
    if (!job_) return;
    // A pool's cancel may throw (std::bad_alloc taking chunks back, std::system_error from a
    // lock), and a destructor that throws ends the program. Uncancelled, the chunks just run
    // and their results go unread.
    try {
      job_->cancel();
    } catch (...) {
    }
  }

  /// Starts the iteration; call once.
  iterator begin() {
    current_ = next();
    return iterator(this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

  /// Counts the results on a meter made from progress (Progress); before begin().
  void watch(Progress progress) {
    std::optional<std::size_t> total;
    if constexpr (std::ranges::sized_range<V>) total = static_cast<std::size_t>(std::ranges::size(input_));
    job_->watch(start_progress(std::move(progress), total));
  }

  /// The next result, nullopt after the last (Python's IMapIterator.next()).
  std::optional<R> next() { return next_until(std::nullopt); }
  /// As next(), throwing TimeoutError when no result is ready in time.
  template <class Rep, class Period>
  std::optional<R> next(std::chrono::duration<Rep, Period> timeout) {
    return next_until(deadline_after(timeout));
  }

 private:
  std::optional<R> next_until(const Deadline& deadline) {
    top_up();
    // Python's order of events: the input's exception comes after the results of the items
    // read before it, so that no task is left running with nobody to read its result.
    if (input_error_ && job_->outstanding() == 0) std::rethrow_exception(std::exchange(input_error_, nullptr));
    return job_->next(deadline);
  }
  void top_up();
  /// Reads up to chunksize_ items; at the input's end, or its exception, sets input_ended_.
  void read_chunk(std::vector<Item>& items);

  Pool* pool_;
  std::shared_ptr<const Fn> fn_;
  V input_;
  std::optional<std::ranges::iterator_t<V>> it_;  // set on first use: V may move before then
  bool input_ended_ = false;
  std::exception_ptr input_error_;  // what the input threw, until the loop reaches it
  std::size_t chunksize_;
  std::size_t window_;  // items in flight ahead of the consumer: enough chunks to keep every worker busy
  std::shared_ptr<StreamJob<R>> job_;
  std::optional<R> current_;
};

}  // namespace detail

// --- definitions -----------------------------------------------------------------------------

template <class Backend>
template <detail::Style S, bool InPlace, class Job, class Fn, class Item>
void BasicPool<Backend>::submit(const std::shared_ptr<Job>& job, const Fn& fn, std::span<const Item> items,
                                std::size_t first, std::size_t chunksize, const std::shared_ptr<const void>& keep_alive,
                                [[maybe_unused]] bool heap_checked) {
  if (items.empty()) {
    job->done(0);
    return;
  }
  if (chunksize == 0) chunksize = default_chunksize(items.size());
  // Counted before any runs: a cancel() tells from them whether it kept any chunk from running.
  if constexpr (requires { job->add_chunks(std::size_t{}); })
    job->add_chunks((items.size() + chunksize - 1) / chunksize);
  std::size_t i = 0;
  [[maybe_unused]] bool all_in_place = true;
  try {
    for (; i < items.size(); i += chunksize) {
      auto chunk = items.subspan(i, std::min(chunksize, items.size() - i));
      // A chunk is read in place when every pmr container among its items uses the shared heap
      // (else it is copied): looked at chunk by chunk, so that the workers start on the first
      // while the caller looks at the next.
      if constexpr (InPlace) {
        if (heap_checked || detail::all_in_shared_memory(chunk)) {
          backend_.template submit_in_place<S>(job, fn, chunk, first + i);
          continue;
        }
        all_in_place = false;
      }
      backend_.template submit<S>(job, fn, chunk, first + i, keep_alive);
    }
    if constexpr (InPlace) detail::note_map(all_in_place);
  } catch (...) {
    // The pool stopped midway: what was not submitted fails, so the job still completes.
    job->fail(first + i, items.size() - i, std::current_exception());
    // Tasks already submitted may read the caller's items (a synchronous map on a backend
    // that does not copy them, or items read in place in the shared heap): they finish before
    // the caller unwinds.
    if constexpr (!Backend::copies_arguments || InPlace) finish(*job);
    throw;
  }
}

template <class Backend>
auto BasicPool<Backend>::checked(TaskLimits limit) -> Limit {
  if (limit.timeout) {
    if constexpr (!Traits::kills_tasks)
      throw std::invalid_argument("mproc: TaskTimeout needs a process pool: a running thread or rank cannot be killed");
    if (limit.timeout->count() <= 0) throw std::invalid_argument("mproc: TaskTimeout must be positive");
  }
  if (limit.retries && (*limit.retries < 0 || *limit.retries > 10000))
    throw std::invalid_argument("mproc: Retries must be from 0 to 10000 (got " + std::to_string(*limit.retries) + ")");
  return limit;
}

template <class Backend>
template <class F, class... A>
AsyncResult<detail::submit_result_t<F, A...>> BasicPool<Backend>::submit(F&& f, A&&... args) {
  if constexpr (detail::takes_stop_token<F, A...>) {
    static_assert(!Backend::sends_functions,
                  "mproc: submit: a task that takes a std::stop_token runs on ThreadPool only: a worker process "
                  "is stopped by terminate() without one");
    auto source = std::make_shared<std::stop_source>();
    auto task = [fn = std::decay_t<F>(std::forward<F>(f)), token = source->get_token()](const std::decay_t<A>&... a) {
      return std::invoke(fn, a..., token);
    };
    auto future =
        start_apply(std::move(task), std::tuple<std::decay_t<A>...>(std::forward<A>(args)...), Limit{}, {}, {});
    detail::FutureAccess::job(future).set_stop([source] { return source->request_stop(); });
    return future;
  } else {
    return start_apply(std::forward<F>(f), std::tuple<std::decay_t<A>...>(std::forward<A>(args)...), Limit{}, {}, {});
  }
}

template <class Backend>
template <class F, std::ranges::input_range Range>
auto BasicPool<Backend>::imap(F&& f, Range&& range, std::size_t chunksize, std::size_t buffersize) {
  return start_imap(std::forward<F>(f), std::forward<Range>(range), chunksize, true, buffersize);
}

template <class Backend>
template <class F, std::ranges::input_range Range>
auto BasicPool<Backend>::imap_unordered(F&& f, Range&& range, std::size_t chunksize, std::size_t buffersize) {
  return start_imap(std::forward<F>(f), std::forward<Range>(range), chunksize, false, buffersize);
}

template <class Backend>
void BasicPool<Backend>::shutdown(bool wait, bool cancel_futures) {
  if constexpr (requires { backend_.cancel_queued(); })
    if (cancel_futures) backend_.cancel_queued();
  backend_.close();
  if (wait) backend_.join();
}

template <class Backend>
template <class Job>
void BasicPool<Backend>::abandon(Job& job) noexcept {
  try {
    job.cancel();
  } catch (...) {
    // Cancelling takes no more than a lock; were it to fail, the work simply runs on.
  }
  if constexpr (!Backend::copies_arguments) {
    // Running tasks read the caller's items: they finish before the caller unwinds. Only a new
    // SIGINT interrupts a wait, and this one is not to be interrupted.
    while (!job.ready()) {
      try {
        job.wait(std::nullopt);
      } catch (...) {
      }
    }
  }
}

template <class Backend>
template <class F, class Args>
detail::apply_result_t<F, Args> BasicPool<Backend>::apply(F&& f, Args&& args) {
  const detail::InterruptScope interruptible;  // a SIGINT while submitting too
  return detail::take_apply_value(start_apply(std::forward<F>(f), std::forward<Args>(args), Limit{}, {}, {}));
}

template <class Backend>
template <class F, class Args>
detail::apply_result_t<F, Args> BasicPool<Backend>::apply(F&& f, Args&& args, TaskLimits limit) {
  const detail::InterruptScope interruptible;  // a SIGINT while submitting too
  return detail::take_apply_value(start_apply(std::forward<F>(f), std::forward<Args>(args), checked(limit), {}, {}));
}

template <class Backend>
template <class F, class Args>
AsyncResult<detail::apply_result_t<F, Args>> BasicPool<Backend>::apply_async(
    F&& f, Args&& args, typename detail::ValueJob<detail::apply_result_t<F, Args>>::Callback callback,
    std::function<void(std::exception_ptr)> error_callback) {
  return start_apply(std::forward<F>(f), std::forward<Args>(args), Limit{}, std::move(callback),
                     std::move(error_callback));
}

template <class Backend>
template <class F, class Args>
AsyncResult<detail::apply_result_t<F, Args>> BasicPool<Backend>::apply_async(
    F&& f, Args&& args, TaskLimits limit, typename detail::ValueJob<detail::apply_result_t<F, Args>>::Callback callback,
    std::function<void(std::exception_ptr)> error_callback) {
  return start_apply(std::forward<F>(f), std::forward<Args>(args), checked(limit), std::move(callback),
                     std::move(error_callback));
}

template <class Backend>
template <class F, class Args, class R>
AsyncResult<R> BasicPool<Backend>::start_apply(F&& f, Args&& args, Limit limit,
                                               typename detail::ValueJob<R>::Callback callback,
                                               std::function<void(std::exception_ptr)> error_callback) {
  using Fn = std::decay_t<F>;
  using Item = std::decay_t<Args>;
  if constexpr (!accepts<detail::Call::apply, F, Item>()) {
    std::abort();  // never compiled: accepts() failed
  } else {
    backend_.check_running();
    auto job =
        std::allocate_shared<detail::ValueJob<R>>(detail::JobAllocator<detail::ValueJob<R>, Traits::job_block_min>{},
                                                  backend_.host(), std::move(callback), std::move(error_callback));
    job->set_task_timeout(limit.timeout);
    job->set_retries(limit.retries);
    // A backend may copy a call's function and arguments when they are small (copies_small): then
    // they need no allocation of their own.
    if constexpr (Backend::copies_arguments || Traits::template copies_small<Fn, Item>) {
      const Fn& fn = f;
      submit<detail::Style::star, false>(job, fn, std::span<const Item>(&args, 1), 0, 1, nullptr);
    } else {
      auto owned = std::make_shared<Owned<Fn, std::array<Item, 1>>>(
          Owned<Fn, std::array<Item, 1>>{Fn(std::forward<F>(f)), {Item(std::forward<Args>(args))}});
      submit<detail::Style::star, false>(job, owned->fn, std::span<const Item>(owned->items), 0, 1, owned);
    }
    return AsyncResult<R>(std::move(job));
  }
}

template <class Backend>
template <detail::Style S, bool Sync, class F, class Range, class R>
std::shared_ptr<detail::ListJob<R>> BasicPool<Backend>::start_list(
    F&& f, Range&& range, std::size_t chunksize, Limit limit, typename detail::ListJob<R>::Callback callback,
    std::function<void(std::exception_ptr)> error_callback) {
  // The results of a map whose workers read its items in place are kept in the heap when many:
  // the workers write them there, and the parent copies them once, into the vector it returns,
  // rather than zero-fill that vector and copy each chunk's results out of a ring twice. (Not
  // when the items are copied: the caller, busy encoding them while results come in, would then
  // copy them all at the end.)
  [[maybe_unused]] bool in_place = false;
  if constexpr (heap_results<R>()) in_place = reads_in_place(range);
  return start_items<S, Sync>(std::forward<F>(f), std::forward<Range>(range), chunksize, [&](std::size_t n) {
    std::shared_ptr<detail::ListJob<R>> job;
    if constexpr (heap_results<R>()) {
      if (R* block = in_place && n >= kResultsInHeapMin / sizeof(R) ? heap_block<R>(n) : nullptr) {
        try {
          job = std::make_shared<detail::ListJob<R>>(backend_.host(), n, std::move(callback), std::move(error_callback),
                                                     shared_resource(), block);
        } catch (...) {
          shared_resource()->deallocate(block, n * sizeof(R), alignof(R));
          throw;
        }
      }
    }
    if (!job)
      job = std::make_shared<detail::ListJob<R>>(backend_.host(), n, std::move(callback), std::move(error_callback));
    job->set_task_timeout(limit.timeout);
    job->set_retries(limit.retries);
    return job;
  });
}

template <class Backend>
template <detail::Style S, class F, class Range, class R>
void BasicPool<Backend>::run_into(F&& f, Range&& range, std::span<R> out, std::size_t chunksize) {
  static_assert(!std::is_const_v<R>, "mproc: map_into: out must be writable");
  static_assert(std::is_same_v<R, detail::map_result_t<S, F, Range>>,
                "mproc: map_into: out's elements must be of the function's result type");
  // Whether the workers may write into out (when they can: see ChunkBook::destination).
  bool workers_write = false;
  if constexpr (Traits::reads_in_place) workers_write = in_shared_heap(out.data(), out.size_bytes());
  const detail::InterruptScope interruptible;  // a SIGINT while submitting, or between two slices
  auto job = start_items<S, true>(std::forward<F>(f), std::forward<Range>(range), chunksize, [&](std::size_t n) {
    if (n != out.size())
      throw std::invalid_argument("mproc: map_into: " + std::to_string(n) + " items, but out holds " +
                                  std::to_string(out.size()));
    return std::make_shared<detail::IntoJob<R>>(backend_.host(), out, workers_write);
  });
  await_call(*job, true);  // results land in out until the job ends
  if (!job->successful()) std::rethrow_exception(job->error());
}

template <class Backend>
template <class Range>
bool BasicPool<Backend>::reads_in_place([[maybe_unused]] const Range& range) const {
  using Item = std::ranges::range_value_t<Range>;
  if constexpr (Traits::reads_in_place && detail::heap_readable<Item>::value && std::ranges::contiguous_range<Range> &&
                std::ranges::sized_range<Range>)
    return backend_.shares(std::ranges::data(range), std::ranges::size(range) * sizeof(Item));
  else
    return false;
}

template <class Backend>
template <class Job>
void BasicPool<Backend>::await_call(Job& job, bool touches_caller_memory) {
  try {
    while (!job.wait(detail::deadline_after(std::chrono::milliseconds(10))))
      if (!job.successful()) break;
  } catch (...) {  // Interrupted
    abandon(job);
    if (touches_caller_memory) {
      if constexpr (Traits::kills_tasks) {
        try {
          job.terminate();
        } catch (...) {
          // The pool is stopping: its workers end anyway, and finish waits for that.
        }
      }
      finish(job);
    }
    throw;
  }
  if (!job.ready()) {
    abandon(job);
    finish(job);
  }
}

template <class Backend>
template <detail::Style S, bool Sync, class F, class Range, class MakeJob>
auto BasicPool<Backend>::start_items(F&& f, Range&& range, std::size_t chunksize, MakeJob&& make_job) {
  using Fn = std::decay_t<F>;
  using Item = std::ranges::range_value_t<Range>;
  constexpr bool contiguous = std::ranges::contiguous_range<Range> && std::ranges::sized_range<Range>;
  constexpr auto call = S == detail::Style::single ? detail::Call::map : detail::Call::starmap;
  if constexpr (!accepts<call, F, Item>()) {
    std::abort();  // never compiled: accepts() failed
    return decltype(make_job(std::size_t{0})){};
  } else {
    backend_.check_running();
    // Made once the number of items is known: an input range is read first.
    auto new_job = [&](std::size_t n) { return make_job(n); };
    const Fn& fn = f;  // a function: a pointer to it, for as long as this call
    if constexpr (contiguous && (Sync || Backend::copies_arguments)) {
      // The caller's items stay valid for as long as tasks read them.
      std::span<const Item> items(std::ranges::data(range), std::ranges::size(range));
      auto job = new_job(items.size());
      if constexpr (Traits::reads_in_place && detail::heap_readable<Item>::value) {
        // Items in memory the workers share (the shared heap, where every mproc::Array lives),
        // with all they refer to, are not copied.
        if (reads_in_place(range)) {
          submit<S, true>(job, fn, items, 0, chunksize, nullptr, detail::items_inherit_heap(range));
          return job;
        }
      }
      if constexpr (Traits::reads_in_place) detail::note_map(false);
      if constexpr (Backend::copies_arguments || std::is_same_v<std::remove_cvref_t<F>, Fn>) {
        submit<S, false>(job, fn, items, 0, chunksize, nullptr);
      } else {
        // A function reference decays to a pointer, which must outlive this frame.
        auto owned_fn = std::make_shared<const Fn>(f);
        submit<S, false>(job, *owned_fn, items, 0, chunksize, owned_fn);
      }
      return job;
    } else if constexpr (Backend::copies_arguments) {
      if constexpr (Traits::reads_in_place) detail::note_map(false);
      // Element by element: an input range's end may be a sentinel of another type.
      std::vector<Item> items;
      if constexpr (std::ranges::sized_range<Range>) items.reserve(std::ranges::size(range));
      for (auto&& x : range) items.push_back(std::forward<decltype(x)>(x));
      auto job = new_job(items.size());
      submit<S, false>(job, fn, std::span<const Item>(items), 0, chunksize, nullptr);
      return job;
    } else {
      auto owned =
          std::make_shared<Owned<Fn, std::vector<Item>>>(Owned<Fn, std::vector<Item>>{Fn(std::forward<F>(f)), {}});
      for (auto&& x : range) owned->items.push_back(std::forward<decltype(x)>(x));
      auto job = new_job(owned->items.size());
      submit<S, false>(job, owned->fn, std::span<const Item>(owned->items), 0, chunksize, owned);
      return job;
    }
  }
}

template <class Backend>
template <detail::Style S, class F, class Range, class R>
AsyncResult<std::vector<R>> BasicPool<Backend>::start_async(F&& f, Range&& range, std::size_t chunksize, Limit limit,
                                                            typename detail::ListJob<R>::Callback callback,
                                                            std::function<void(std::exception_ptr)> error_callback) {
  return AsyncResult<std::vector<R>>(start_list<S, false>(std::forward<F>(f), std::forward<Range>(range), chunksize,
                                                          limit, std::move(callback), std::move(error_callback)));
}

template <class Backend>
template <detail::Style S, class F, class Range>
std::vector<detail::map_result_t<S, F, Range>> BasicPool<Backend>::run_list(F&& f, Range&& range, std::size_t chunksize,
                                                                            Limit limit,
                                                                            std::optional<Progress> progress) {
  const detail::InterruptScope interruptible;  // a SIGINT while submitting, or between two slices
  const bool in_place = reads_in_place(range);
  auto job = start_list<S, true>(std::forward<F>(f), std::forward<Range>(range), chunksize, limit, {}, {});
  if (progress) watched(job, std::move(*progress));
  await_call(*job, in_place);
  if (!job->successful()) std::rethrow_exception(job->error());
  return job->take();
}

template <class Backend>
template <class F, std::ranges::input_range Range>
std::vector<detail::map_result_t<detail::Style::single, F, Range>> BasicPool<Backend>::map(F&& f, Range&& range,
                                                                                           std::size_t chunksize) {
  return run_list<detail::Style::single>(std::forward<F>(f), std::forward<Range>(range), chunksize, Limit{});
}

template <class Backend>
template <class F, std::ranges::input_range Range>
std::vector<detail::map_result_t<detail::Style::single, F, Range>> BasicPool<Backend>::map(F&& f, Range&& range,
                                                                                           std::size_t chunksize,
                                                                                           TaskLimits limit) {
  return run_list<detail::Style::single>(std::forward<F>(f), std::forward<Range>(range), chunksize, checked(limit));
}

template <class Backend>
template <class F, std::ranges::input_range Range>
AsyncResult<std::vector<detail::map_result_t<detail::Style::single, F, Range>>> BasicPool<Backend>::map_async(
    F&& f, Range&& range, std::size_t chunksize,
    typename detail::ListJob<detail::map_result_t<detail::Style::single, F, Range>>::Callback callback,
    std::function<void(std::exception_ptr)> error_callback) {
  return start_async<detail::Style::single>(std::forward<F>(f), std::forward<Range>(range), chunksize, Limit{},
                                            std::move(callback), std::move(error_callback));
}

template <class Backend>
template <class F, std::ranges::input_range Range>
AsyncResult<std::vector<detail::map_result_t<detail::Style::single, F, Range>>> BasicPool<Backend>::map_async(
    F&& f, Range&& range, std::size_t chunksize, TaskLimits limit,
    typename detail::ListJob<detail::map_result_t<detail::Style::single, F, Range>>::Callback callback,
    std::function<void(std::exception_ptr)> error_callback) {
  return start_async<detail::Style::single>(std::forward<F>(f), std::forward<Range>(range), chunksize, checked(limit),
                                            std::move(callback), std::move(error_callback));
}

template <class Backend>
template <class F, std::ranges::input_range Range>
std::vector<detail::map_result_t<detail::Style::star, F, Range>> BasicPool<Backend>::starmap(F&& f, Range&& range,
                                                                                             std::size_t chunksize) {
  return run_list<detail::Style::star>(std::forward<F>(f), std::forward<Range>(range), chunksize, Limit{});
}

template <class Backend>
template <class F, std::ranges::input_range Range>
std::vector<detail::map_result_t<detail::Style::star, F, Range>> BasicPool<Backend>::starmap(F&& f, Range&& range,
                                                                                             std::size_t chunksize,
                                                                                             TaskLimits limit) {
  return run_list<detail::Style::star>(std::forward<F>(f), std::forward<Range>(range), chunksize, checked(limit));
}

template <class Backend>
template <class F, std::ranges::input_range Range>
AsyncResult<std::vector<detail::map_result_t<detail::Style::star, F, Range>>> BasicPool<Backend>::starmap_async(
    F&& f, Range&& range, std::size_t chunksize,
    typename detail::ListJob<detail::map_result_t<detail::Style::star, F, Range>>::Callback callback,
    std::function<void(std::exception_ptr)> error_callback) {
  return start_async<detail::Style::star>(std::forward<F>(f), std::forward<Range>(range), chunksize, Limit{},
                                          std::move(callback), std::move(error_callback));
}

template <class Backend>
template <class F, std::ranges::input_range Range>
AsyncResult<std::vector<detail::map_result_t<detail::Style::star, F, Range>>> BasicPool<Backend>::starmap_async(
    F&& f, Range&& range, std::size_t chunksize, TaskLimits limit,
    typename detail::ListJob<detail::map_result_t<detail::Style::star, F, Range>>::Callback callback,
    std::function<void(std::exception_ptr)> error_callback) {
  return start_async<detail::Style::star>(std::forward<F>(f), std::forward<Range>(range), chunksize, checked(limit),
                                          std::move(callback), std::move(error_callback));
}

template <class Backend>
template <class F, std::ranges::input_range Range>
auto BasicPool<Backend>::imap(F&& f, Range&& range, std::size_t chunksize) {
  return start_imap(std::forward<F>(f), std::forward<Range>(range), chunksize, true);
}

template <class Backend>
template <class F, std::ranges::input_range Range>
auto BasicPool<Backend>::imap_unordered(F&& f, Range&& range, std::size_t chunksize) {
  return start_imap(std::forward<F>(f), std::forward<Range>(range), chunksize, false);
}

template <class Backend>
template <class F, class Range>
auto BasicPool<Backend>::start_imap(F&& f, Range&& range, std::size_t chunksize, bool ordered, std::size_t buffersize) {
  using Fn = std::decay_t<F>;
  if constexpr (!accepts<detail::Call::map, F, std::ranges::range_value_t<Range>>()) {
    // Never compiled (accepts() failed); a range of the results' type, so that the caller's loop
    // adds no errors of its own.
    return std::views::empty<detail::map_result_t<detail::Style::single, F, Range>>;
  } else {
    backend_.check_running();
    // imap always copies its items: a range dropped early leaves chunks running, which must not
    // read items the caller may free at once.
    if constexpr (Traits::reads_in_place) detail::note_map(false);
    return detail::ImapRange<BasicPool, detail::Style::single, Fn, std::views::all_t<Range>>(
        *this, Fn(std::forward<F>(f)), std::views::all(std::forward<Range>(range)), chunksize, ordered, buffersize);
  }
}

// --- Progress ---------------------------------------------------------------------------------

template <class Backend>
template <class F, std::ranges::input_range Range>
std::vector<detail::map_result_t<detail::Style::single, F, Range>> BasicPool<Backend>::map(F&& f, Range&& range,
                                                                                           std::size_t chunksize,
                                                                                           Progress progress) {
  return map(std::forward<F>(f), std::forward<Range>(range), chunksize, TaskLimits{}, std::move(progress));
}

template <class Backend>
template <class F, std::ranges::input_range Range>
std::vector<detail::map_result_t<detail::Style::single, F, Range>> BasicPool<Backend>::map(F&& f, Range&& range,
                                                                                           std::size_t chunksize,
                                                                                           TaskLimits limit,
                                                                                           Progress progress) {
  return run_list<detail::Style::single>(std::forward<F>(f), std::forward<Range>(range), chunksize, checked(limit),
                                         std::move(progress));
}

template <class Backend>
template <class F, std::ranges::input_range Range>
AsyncResult<std::vector<detail::map_result_t<detail::Style::single, F, Range>>> BasicPool<Backend>::map_async(
    F&& f, Range&& range, std::size_t chunksize,
    typename detail::ListJob<detail::map_result_t<detail::Style::single, F, Range>>::Callback callback,
    std::function<void(std::exception_ptr)> error_callback, Progress progress) {
  return map_async(std::forward<F>(f), std::forward<Range>(range), chunksize, TaskLimits{}, std::move(callback),
                   std::move(error_callback), std::move(progress));
}

template <class Backend>
template <class F, std::ranges::input_range Range>
AsyncResult<std::vector<detail::map_result_t<detail::Style::single, F, Range>>> BasicPool<Backend>::map_async(
    F&& f, Range&& range, std::size_t chunksize, TaskLimits limit,
    typename detail::ListJob<detail::map_result_t<detail::Style::single, F, Range>>::Callback callback,
    std::function<void(std::exception_ptr)> error_callback, Progress progress) {
  using R = detail::map_result_t<detail::Style::single, F, Range>;
  return AsyncResult<std::vector<R>>(
      watched(start_list<detail::Style::single, false>(std::forward<F>(f), std::forward<Range>(range), chunksize,
                                                       checked(limit), std::move(callback), std::move(error_callback)),
              std::move(progress)));
}

template <class Backend>
template <class F, std::ranges::input_range Range>
std::vector<detail::map_result_t<detail::Style::star, F, Range>> BasicPool<Backend>::starmap(F&& f, Range&& range,
                                                                                             std::size_t chunksize,
                                                                                             Progress progress) {
  return starmap(std::forward<F>(f), std::forward<Range>(range), chunksize, TaskLimits{}, std::move(progress));
}

template <class Backend>
template <class F, std::ranges::input_range Range>
std::vector<detail::map_result_t<detail::Style::star, F, Range>> BasicPool<Backend>::starmap(F&& f, Range&& range,
                                                                                             std::size_t chunksize,
                                                                                             TaskLimits limit,
                                                                                             Progress progress) {
  return run_list<detail::Style::star>(std::forward<F>(f), std::forward<Range>(range), chunksize, checked(limit),
                                       std::move(progress));
}

template <class Backend>
template <class F, std::ranges::input_range Range>
AsyncResult<std::vector<detail::map_result_t<detail::Style::star, F, Range>>> BasicPool<Backend>::starmap_async(
    F&& f, Range&& range, std::size_t chunksize,
    typename detail::ListJob<detail::map_result_t<detail::Style::star, F, Range>>::Callback callback,
    std::function<void(std::exception_ptr)> error_callback, Progress progress) {
  return starmap_async(std::forward<F>(f), std::forward<Range>(range), chunksize, TaskLimits{}, std::move(callback),
                       std::move(error_callback), std::move(progress));
}

template <class Backend>
template <class F, std::ranges::input_range Range>
AsyncResult<std::vector<detail::map_result_t<detail::Style::star, F, Range>>> BasicPool<Backend>::starmap_async(
    F&& f, Range&& range, std::size_t chunksize, TaskLimits limit,
    typename detail::ListJob<detail::map_result_t<detail::Style::star, F, Range>>::Callback callback,
    std::function<void(std::exception_ptr)> error_callback, Progress progress) {
  using R = detail::map_result_t<detail::Style::star, F, Range>;
  return AsyncResult<std::vector<R>>(
      watched(start_list<detail::Style::star, false>(std::forward<F>(f), std::forward<Range>(range), chunksize,
                                                     checked(limit), std::move(callback), std::move(error_callback)),
              std::move(progress)));
}

template <class Backend>
template <class F, std::ranges::input_range Range>
auto BasicPool<Backend>::imap(F&& f, Range&& range, std::size_t chunksize, Progress progress) {
  auto results = start_imap(std::forward<F>(f), std::forward<Range>(range), chunksize, true);
  if constexpr (requires { results.watch(std::move(progress)); }) results.watch(std::move(progress));
  return results;
}

template <class Backend>
template <class F, std::ranges::input_range Range>
auto BasicPool<Backend>::imap_unordered(F&& f, Range&& range, std::size_t chunksize, Progress progress) {
  auto results = start_imap(std::forward<F>(f), std::forward<Range>(range), chunksize, false);
  if constexpr (requires { results.watch(std::move(progress)); }) results.watch(std::move(progress));
  return results;
}

namespace detail {

template <class Pool, Style S, class Fn, class V>
ImapRange<Pool, S, Fn, V>::ImapRange(Pool& pool, Fn fn, V input, std::size_t chunksize, bool ordered,
                                     std::size_t buffersize)
    : pool_(&pool),
      fn_(std::make_shared<const Fn>(std::move(fn))),
      input_(std::move(input)),
      chunksize_(std::max<std::size_t>(1, chunksize)),
      window_(chunksize_ * (buffersize ? buffersize : std::max<std::size_t>(64, 8 * std::size_t{pool.processes()}))),
      job_(std::make_shared<StreamJob<R>>(pool.backend().host(), ordered)) {}

template <class Pool, Style S, class Fn, class V>
void ImapRange<Pool, S, Fn, V>::top_up() {
  while (!input_ended_ && job_->outstanding() < window_) {
    // Chunks own their items: the consumer may stop early while tasks still run.
    auto chunk = std::make_shared<std::pair<std::shared_ptr<const Fn>, std::vector<Item>>>(fn_, std::vector<Item>{});
    read_chunk(chunk->second);
    // A chunk cut short by the input's exception still runs: its items come before the exception.
    if (chunk->second.empty()) {
      if (input_ended_) job_->end_input();
      return;
    }
    std::size_t first = job_->expect(chunk->second.size());
    if (input_ended_) job_->end_input();  // the total, this chunk's items counted
    pool_->template submit<S, false>(job_, *fn_, std::span<const Item>(chunk->second), first, chunksize_, chunk);
  }
}

template <class Pool, Style S, class Fn, class V>
void ImapRange<Pool, S, Fn, V>::read_chunk(std::vector<Item>& items) {
  try {
    if (!it_) it_ = std::ranges::begin(input_);
    for (; items.size() < chunksize_; ++*it_) {
      if (*it_ == std::ranges::end(input_)) {
        input_ended_ = true;
        return;
      }
      items.push_back(**it_);
    }
  } catch (...) {
    input_error_ = std::current_exception();
    input_ended_ = true;
  }
}

}  // namespace detail
}  // namespace mproc
