// backend.hpp: PoolBackend — what BasicPool needs of a backend, as a concept that BasicPool
// checks with a static_assert; and backend_traits — a backend's optional capabilities, each off
// unless the backend declares it. ThreadBackend, ProcessBackend and MpiBackend are its models.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>

#include "mproc/detail/invoke.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/pool_options.hpp"

namespace mproc::detail {

// What every backend offers. Where one is missing, the compiler's notes under BasicPool's
// static_assert name it.
//   Backend(PoolOptions) starts the workers; size() counts them; host() is the JobHost its jobs
//   report to; check_running() throws PoolNotRunning once close() or terminate() was called.
//   submit<S>(job, fn, items, first, keep_alive) runs fn over a chunk of items, reporting item i
//   to job as item first + i. job is the call's own kind (ValueJob, ListJob or StreamJob, all
//   final), so that a backend that reports results itself needs no virtual call per item.
//   keep_alive owns fn and items when the caller does not wait for them (null otherwise).
//   close(), join() and terminate() as the pool's; shutdown() (noexcept) is close() then
//   join(), for the pool's destructor.
//   sends_functions: fn must be a SendableFunction, arguments and results Sendable (the
//   workers are other processes). copies_arguments: submit() is done with fn and items when
//   it returns, so the caller need not keep them.
// The probe types below only check that the members exist and take such arguments.
template <class B>
concept PoolBackend = requires(B& b, const B& cb, PoolOptions options, const std::shared_ptr<ListJob<int>>& job,
                               int (*fn)(int), std::span<const int> items, std::size_t first,
                               const std::shared_ptr<const void>& keep_alive) {
  B(std::move(options));
  { cb.size() } -> std::convertible_to<unsigned>;
  { b.host() } -> std::convertible_to<JobHost*>;
  cb.check_running();
  b.template submit<Style::single>(job, fn, items, first, keep_alive);
  b.close();
  b.join();
  b.terminate();
  requires noexcept(b.shutdown());
  requires std::is_same_v<decltype(B::sends_functions), const bool>;
  requires std::is_same_v<decltype(B::copies_arguments), const bool>;
};

// A backend's optional capabilities: each is the backend's static member of that name where it
// declares one, else the default given here.
template <class B>
struct backend_traits {
  // Workers can be stopped mid-task: task_timeout and TaskTimeout are enforced.
  static constexpr bool kills_tasks = [] {
    if constexpr (requires { B::kills_tasks; })
      return bool{B::kills_tasks};
    else
      return false;
  }();
  // Workers read the caller's memory where shares(p, bytes) says they see it as it is; then
  // submit_in_place<S>(job, fn, items, first) sends only where the items are.
  static constexpr bool reads_in_place = [] {
    if constexpr (requires { B::reads_in_place; })
      return bool{B::reads_in_place};
    else
      return false;
  }();
  // submit() copies a one-item task of these types into the task itself, with the function:
  // apply_async then allocates nothing for its function and arguments.
  template <class Fn, class Item>
  static constexpr bool copies_small = [] {
    if constexpr (requires { B::template copies_small<Fn, Item>; })
      return bool{B::template copies_small<Fn, Item>};
    else
      return false;
  }();
  // The least heap block an apply_async's job takes (see JobAllocator).
  static constexpr std::size_t job_block_min = [] {
    if constexpr (requires { B::job_block_min; })
      return std::size_t{B::job_block_min};
    else
      return std::size_t{0};
  }();
};

// Whether a worker may write results of type T straight into the caller's memory (placeable_v):
// defined with the codec (codec.hpp), which the backends that read in place include.
template <class T>
struct is_placeable;

// A backend that declares reads_in_place offers what it needs.
template <class B>
concept InPlaceReader = requires(B& b, const B& cb, const void* p, std::size_t bytes,
                                 const std::shared_ptr<ListJob<int>>& job, int (*fn)(int), std::span<const int> items,
                                 std::size_t first) {
  { cb.shares(p, bytes) } -> std::convertible_to<bool>;
  b.template submit_in_place<Style::single>(job, fn, items, first);
};

}  // namespace mproc::detail
