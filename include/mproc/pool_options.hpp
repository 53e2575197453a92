// pool_options.hpp: PoolOptions — how a pool is built: its size, a per-worker initializer,
// the recycling limit and a task time limit.
#pragma once

#include <chrono>
#include <functional>
#include <optional>

namespace mproc {

// Every field has a default; set the ones you need with designated initializers:
// mproc::Pool pool(mproc::PoolOptions{.processes = 3, .maxtasksperchild = 10});
struct PoolOptions {
  // Number of workers. Unset: process_cpu_count(). Zero or negative throws std::invalid_argument.
  std::optional<int> processes{};
  // Runs once in each new worker before its first task (also in workers that replace others).
  // In a process pool it runs in the child, so it may set up per-process state.
  std::function<void()> initializer{};
  // A worker leaves after this many tasks (a chunk of a map counts as one task, as in Python)
  // and is replaced. Unset: no limit. Zero or negative throws std::invalid_argument.
  std::optional<long> maxtasksperchild{};
  // A task running longer fails with TimeoutError; its worker is killed and replaced (process
  // pools; a thread cannot be killed, so ThreadPool rejects this option). Unset: no limit.
  std::optional<std::chrono::nanoseconds> task_timeout{};
};

namespace detail {
// Checks options and returns the number of workers; throws std::invalid_argument.
unsigned checked_pool_size(const PoolOptions& options);
}  // namespace detail

}  // namespace mproc
