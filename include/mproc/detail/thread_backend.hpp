// thread_backend.hpp: ThreadBackend — the backend of ThreadPool: worker threads in this process,
// each with its own task queue, stealing from the others when idle. ThreadTask is one queued
// chunk. The queues and the workers are in src/backend/thread/; this header only packs a chunk.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <span>

#include "mproc/detail/invoke.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/pool_options.hpp"

namespace mproc::detail {

class ThreadPoolCore;

// A chunk waiting for a worker: the caller's function and items by address (the front end keeps
// them alive, through keep_alive or by waiting), and a typed entry point. No allocation of its own.
struct ThreadTask {
  using Runner = void (*)(ThreadTask& task) noexcept;
  Runner run = nullptr;
  std::shared_ptr<JobBase> job;
  const void* fn = nullptr;
  const void* items = nullptr;
  std::size_t count = 0;
  std::size_t first = 0;
  std::shared_ptr<const void> keep_alive;
};

class ThreadBackend {
 public:
  static constexpr bool sends_functions = false;   // any callable: workers share our memory
  static constexpr bool copies_arguments = false;  // tasks read the items where they are

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

  template <Style S, class Fn, class Item, class R>
  void submit(const std::shared_ptr<TypedJob<R>>& job, const Fn& fn, std::span<const Item> items,
              std::size_t first, const std::shared_ptr<const void>& keep_alive);

  void close();
  void join();       // finishes every submitted task, then joins the threads
  void terminate();  // tasks not started fail with PoolNotRunning; running ones finish
  void shutdown() noexcept;  // close() and join(), for destructors

 private:
  void enqueue(ThreadTask&& task);

  std::unique_ptr<ThreadPoolCore> core_;
};

// Drop a worker's reference to a task's exception or to a finished job. The last reference to an
// exception may go here, after the caller's last use of it, ordered only by libstdc++'s own
// reference count, which ThreadSanitizer cannot see: pool_core.cpp has it look away meanwhile.
void release_shared(std::exception_ptr& error) noexcept;
void release_shared(std::shared_ptr<JobBase>& job) noexcept;

// As run_local(), but an exception is recorded after its handler has ended and this thread's
// own reference is dropped in release_shared(): the job may hand it to the caller at once (imap),
// and the end of a handler frees the exception there, out of ThreadSanitizer's sight.
template <Style S, class Fn, class Item, class R>
void run_thread_task(ThreadTask& task) noexcept {
  const Fn& fn = *static_cast<const Fn*>(task.fn);
  const Item* items = static_cast<const Item*>(task.items);
  auto& job = static_cast<TypedJob<R>&>(*task.job);
  for (std::size_t i = 0; i < task.count; ++i) {
    std::exception_ptr error;
    try {
      job.set_value(task.first + i, call<S>(fn, items[i]));
      continue;
    } catch (...) {
      error = std::current_exception();
    }
    job.set_error(task.first + i, error);
    release_shared(error);
  }
  job.done(task.count);
}

template <Style S, class Fn, class Item, class R>
void ThreadBackend::submit(const std::shared_ptr<TypedJob<R>>& job, const Fn& fn, std::span<const Item> items,
                           std::size_t first, const std::shared_ptr<const void>& keep_alive) {
  enqueue(ThreadTask{&run_thread_task<S, Fn, Item, R>, job, &fn, items.data(), items.size(), first, keep_alive});
}

}  // namespace mproc::detail
