// thread_backend.hpp: ThreadBackend — the backend of ThreadPool: worker threads in this process,
// each with its own task queue, stealing from the others when idle. ThreadTask is one queued
// chunk. The queues and the workers are in src/backend/thread/; this header only packs a chunk.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <new>
#include <span>
#include <type_traits>

#include "mproc/detail/insights_recorder.hpp"
#include "mproc/detail/invoke.hpp"
#include "mproc/detail/item_clock.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/pool_options.hpp"

namespace mproc::detail {

class ThreadPoolCore;

// A chunk waiting for a worker: the caller's function and items by address (the front end keeps
// them alive, through keep_alive or by waiting), and a typed entry point. No allocation of its own.
// A one-item task of small types travels inside the task instead (see ThreadBackend::copies_small).
struct ThreadTask {
  using Runner = void (*)(ThreadTask& task) noexcept;
  static constexpr std::size_t kLocalBytes = 32;

  Runner run = nullptr;
  std::shared_ptr<JobBase> job;
  const void* fn = nullptr;
  const void* items = nullptr;
  std::size_t count = 0;
  std::size_t first = 0;
  std::shared_ptr<const void> keep_alive;
  // The function, then the item, as bytes; uninitialized unless used. In a struct of its own so
  // that moving a task copies them as one block, not byte by byte.
  struct alignas(16) Bytes {
    unsigned char at[kLocalBytes];
  } local;
};

// Where a small item sits in ThreadTask::local, after the function.
template <class Fn, class Item>
inline constexpr std::size_t local_item_offset = (sizeof(Fn) + alignof(Item) - 1) / alignof(Item) * alignof(Item);

class ThreadBackend {
 public:
  static constexpr bool sends_functions = false;   // any callable: workers share our memory
  static constexpr bool copies_arguments = false;  // tasks read the items where they are
  // Except a single item of these types, which submit() copies into the task with the function,
  // so that apply_async allocates nothing for them: small, and copied as bytes when the task
  // moves (a trivial copy constructor and destructor; std::tuple of such qualifies, though its
  // assignment operators keep it from being trivially copyable, and they are never used here).
  template <class Fn, class Item>
  static constexpr bool copies_small =
      std::is_trivially_copy_constructible_v<Fn>&& std::is_trivially_destructible_v<Fn>&&
          std::is_trivially_copy_constructible_v<Item>&& std::is_trivially_destructible_v<Item> &&
      alignof(Fn) <= 16 && alignof(Item) <= 16 && local_item_offset<Fn, Item> + sizeof(Item) <= ThreadTask::kLocalBytes;

  // Throws std::invalid_argument for bad options and for task_timeout (a thread cannot be
  // killed). maxtasksperchild is accepted and has no effect: threads are never replaced. The
  // initializer runs once in each worker thread before it takes a task; if it throws, so does
  // this constructor.
  explicit ThreadBackend(PoolOptions options);
  ThreadBackend(const ThreadBackend&) = delete;
  ThreadBackend& operator=(const ThreadBackend&) = delete;
  ~ThreadBackend();

  [[nodiscard]] unsigned size() const noexcept;
  [[nodiscard]] JobHost* host() noexcept;
  void check_running() const;  // throws PoolNotRunning

  // Job: the call's ValueJob, ListJob or StreamJob; a task reports to it without virtual calls.
  template <Style S, class Job, class Fn, class Item>
  void submit(const std::shared_ptr<Job>& job, const Fn& fn, std::span<const Item> items, std::size_t first,
              const std::shared_ptr<const void>& keep_alive);

  // Null unless PoolOptions::insights.
  [[nodiscard]] const InsightsRecorder* insights() const noexcept;

  void close();
  void join();               // finishes every submitted task, then joins the threads
  void terminate();          // tasks not started fail with PoolNotRunning; running ones finish
  void shutdown() noexcept;  // close() and join(), for destructors
  void cancel_queued();      // every queued task is cancelled (shutdown(cancel_futures))

 private:
  void enqueue(ThreadTask&& task);

  std::unique_ptr<ThreadPoolCore> core_;
};

// Drop a worker's reference to a task's exception or to a finished job. The last reference to an
// exception may go here, after the caller's last use of it, ordered only by libstdc++'s own
// reference count, which ThreadSanitizer cannot see: pool_core.cpp has it look away meanwhile.
void release_shared(std::exception_ptr& error) noexcept;
void release_shared(std::shared_ptr<JobBase>& job) noexcept;

// Where a task's results go when its job lets a worker store them itself (ListJob, IntoJob:
// results_at), else nullptr: the job is told each one (set_value).
template <class Job>
auto results_of(Job& job, std::size_t first) noexcept {
  if constexpr (requires { job.results_at(first); })
    return job.results_at(first);
  else
    return nullptr;
}

// Runs item i of a task, storing its result at out[i] (or reporting it to job when out is
// nullptr) and reporting its exception to job. An exception is recorded after its handler has
// ended and this thread's own reference is dropped in release_shared(): the job may hand it to
// the caller at once (imap), and the end of a handler frees the exception there, out of
// ThreadSanitizer's sight. Always inlined: called from three loops below, it was not, and a map
// of small items paid a call per item (ThreadPool's article map 25% slower).
template <Style S, class Fn, class Item, class Job, class Out>
[[gnu::always_inline]] inline void run_thread_item(const Fn& fn, const Item* items, std::size_t first, Job& job,
                                                   std::size_t i, Out out) noexcept {
  std::exception_ptr error;
  try {
    if constexpr (std::is_null_pointer_v<Out>)
      job.set_value(first + i, call<S>(fn, items[i]));
    else
      out[i] = call<S>(fn, items[i]);
    return;
  } catch (...) {
    error = std::current_exception();
  }
  job.set_error(first + i, error);
  release_shared(error);
}

// Runs a task's items, reporting each result or exception to its job. Job is the job's own type
// (final: a ListJob's results go straight to their slots, without a virtual call per item, which
// costs as much as a small map item itself). Local: the function and the one item are in
// task.local. Timed on t_item_clock when it is set (insights), and reported through its ran
// before the job can complete.
template <Style S, class Fn, class Item, class Job, bool Local>
void run_thread_task(ThreadTask& task) noexcept {
  const Fn& fn = Local ? *std::launder(reinterpret_cast<const Fn*>(task.local.at)) : *static_cast<const Fn*>(task.fn);
  const Item* items = Local ? std::launder(reinterpret_cast<const Item*>(task.local.at + local_item_offset<Fn, Item>))
                            : static_cast<const Item*>(task.items);
  auto& job = static_cast<Job&>(*task.job);
  const std::size_t first = task.first;
  const auto out = results_of(job, first);
  if (ItemClock* clock = t_item_clock) [[unlikely]] {
    auto one = [&](std::size_t i) { run_thread_item<S>(fn, items, first, job, i, out); };
    auto block = [&](std::size_t from, std::size_t end) {
      for (std::size_t i = from; i < end; ++i) run_thread_item<S>(fn, items, first, job, i, out);
    };
    clock->run(
        0, task.count, [](std::size_t) {}, one, block);
    if (clock->ran) clock->ran(*clock, job, call_kind<S>(job));
  } else {
    for (std::size_t i = 0, n = task.count; i < n; ++i) run_thread_item<S>(fn, items, first, job, i, out);
  }
  job.done(task.count);
}

template <Style S, class Job, class Fn, class Item>
void ThreadBackend::submit(const std::shared_ptr<Job>& job, const Fn& fn, std::span<const Item> items,
                           std::size_t first, const std::shared_ptr<const void>& keep_alive) {
  // Fields set one by one: an aggregate initializer would also zero task.local, 32 bytes that
  // only a one-item task uses, on every submission.
  ThreadTask task;
  task.job = job;
  task.first = first;
  if constexpr (copies_small<Fn, Item>) {
    if (items.size() == 1) {
      task.run = &run_thread_task<S, Fn, Item, Job, true>;
      task.count = 1;
      ::new (static_cast<void*>(task.local.at)) Fn(fn);
      ::new (static_cast<void*>(task.local.at + local_item_offset<Fn, Item>)) Item(items[0]);
      enqueue(std::move(task));
      return;
    }
  }
  task.run = &run_thread_task<S, Fn, Item, Job, false>;
  task.fn = &fn;
  task.items = items.data();
  task.count = items.size();
  task.keep_alive = keep_alive;
  enqueue(std::move(task));
}

}  // namespace mproc::detail
