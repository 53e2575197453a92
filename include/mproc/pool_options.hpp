/// @file
/// pool_options.hpp: PoolOptions — how a pool is built: its size, a per-worker initializer,
/// the recycling limit, a task time limit, memory limits and retries. TaskTimeout and Retries — the same for one
/// call's tasks, TaskLimits — both together.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>

namespace mproc {

/// Where a process pool's workers write their stdout and stderr (PoolOptions::output).
enum class Output {
  /// As the program does: the same descriptors, each worker's writes as they come (the default).
  inherit,
  /// Through a pipe per stream to a pool thread that writes whole lines to the program's stdout
  /// and stderr, each prefixed "[worker N] " (N: worker_id()). A line is never cut by another
  /// worker's; what a worker wrote before it died is not lost (stdout is line-buffered in the
  /// worker, so only a line it had not ended can be, and even that is written, ended); a line
  /// over 4000 bytes goes out in pieces, each with the prefix.
  lines,
};

/// Every field has a default; set the ones you need with designated initializers:
/// mproc::Pool pool(mproc::PoolOptions{.processes = 3, .maxtasksperchild = 10});
/// The pool's constructor checks them and throws std::invalid_argument for a bad value.
struct PoolOptions {
  /// Number of workers. Unset: process_cpu_count(). Zero, negative or over 4096 throws.
  std::optional<int> processes{};
  /// Runs once in each new worker before its first task (also in workers that replace others).
  /// In a process pool it runs in the child, forked after it was made, so it may capture anything
  /// that outlives the pool, and set up per-process state. If it throws in a first worker, the
  /// pool's constructor throws that exception (docs/failure-and-recovery.md for replacements).
  /// MpiPool needs a plain function here.
  std::function<void()> initializer{};
  /// A worker leaves after this many tasks (a chunk of a map counts as one task, as in Python)
  /// and is replaced; nothing is lost. Unset: no limit. Zero or negative throws. ThreadPool
  /// ignores it (its threads are never replaced).
  std::optional<long> maxtasksperchild{};
  /// A task running longer fails with TimeoutError; its worker is killed and replaced. Process
  /// pools only: a thread or an MPI rank cannot be killed, so ThreadPool and MpiPool reject it.
  /// Unset: no limit. Zero or negative throws.
  std::optional<std::chrono::nanoseconds> task_timeout{};
  /// A memory cap per worker, in bytes: memory the worker uses, never address space it only
  /// reserves (the shared heap reserves a large range in every process). A task that goes past it
  /// fails with MemoryLimitError (a WorkerLost, retried as one); its worker is replaced. Enforced
  /// by a cgroup v2 group per worker (memory.max) where this process may make one, else by
  /// RLIMIT_DATA in the worker on top of what it had at its start (docs/failure-and-recovery.md
  /// says what each sees). Process pools only: ThreadPool and MpiPool throw
  /// std::invalid_argument. Unset: no limit. Below min_memory_limit throws.
  std::optional<std::size_t> memory_limit{};
  /// The smallest memory_limit accepted, 32 MiB: a worker's own buffers, a thread's stack (8 MiB
  /// by default) and malloc's per-thread arenas (64 MiB reserved, counted as they are used) need
  /// room before a task's data does.
  static constexpr std::size_t min_memory_limit = std::size_t{32} << 20;
  /// A leak guard: after each chunk, a worker whose resident set (RSS, as /proc/PID/statm
  /// counts it) is past this many bytes leaves, and is replaced, between tasks: no task fails,
  /// and chunks queued on it run elsewhere. A worker starts as a fork of the program, sharing its
  /// pages, so set it well above the program's own resident size. Process pools only: ThreadPool
  /// and MpiPool throw std::invalid_argument. Unset: no limit. Zero throws.
  std::optional<std::size_t> max_worker_rss{};
  /// A task lost with its worker (WorkerLost, or TimeoutError from a time limit) runs again, up
  /// to this many more times, on a live worker (often the lost one's replacement); an exception
  /// the task throws itself is never retried. When the retries run out, the last error is thrown
  /// and its message says how many attempts were made. A chunk of a map is retried as a whole,
  /// and its results keep their places. Nothing is lost with a ThreadPool's thread, and an MPI
  /// rank's death ends the whole job: ThreadPool and MpiPool accept it and never retry.
  /// Negative throws.
  int retries = 0;
  /// Workers' stdout and stderr: as the program's (Output::inherit), or forwarded whole lines at a
  /// time with the worker's number (Output::lines). Process pools only: ThreadPool and MpiPool
  /// throw std::invalid_argument for Output::lines (mpirun has --tag-output for that).
  Output output = Output::inherit;
  /// Record where the time goes: per worker its tasks, chunks, time working, waiting, encoding
  /// and decoding, start-up and restarts, and the slowest tasks (pool.insights()), and every
  /// chunk for pool.write_trace(). Off, it costs nothing; on, a few percent on the shortest
  /// tasks (two reads of the CPU's cycle counter per task, and 96 bytes per chunk's result).
  bool insights = false;
};

/// A time limit for the tasks of one call, in place of PoolOptions::task_timeout:
///
///     pool.apply(f, args, mproc::TaskTimeout(2s));  pool.map(f, xs, 100, mproc::TaskTimeout(1s));
/// As there, a task is a chunk of a map, and one running longer fails with TimeoutError while its
/// worker is killed and replaced. Process pools only: other pools throw std::invalid_argument.
struct TaskTimeout {
  /// Zero or negative throws std::invalid_argument.
  template <class Rep, class Period>
  explicit TaskTimeout(std::chrono::duration<Rep, Period> duration)
      : limit(std::chrono::duration_cast<std::chrono::nanoseconds>(duration)) {}
  /// The limit, in nanoseconds.
  std::chrono::nanoseconds limit;
};

/// Retries for the tasks of one call, in place of PoolOptions::retries:
///
///     pool.apply(f, args, mproc::Retries(2));  pool.map(f, xs, 0, mproc::TaskTimeout(1s) | mproc::Retries(3));
struct Retries {
  /// Negative throws std::invalid_argument when the call is made.
  explicit Retries(int n) : count(n) {}
  /// How many times a lost task runs again.
  int count;
};

/// What one call sets for its tasks in place of the pool's options: a TaskTimeout, Retries, or
/// both (`mproc::TaskTimeout(1s) | mproc::Retries(2)`). Made from either implicitly.
struct TaskLimits {
  /// No limit of the call's own: the pool's options apply.
  TaskLimits() = default;
  /// A time limit for the call's tasks.
  TaskLimits(TaskTimeout limit) : timeout(limit.limit) {}  // NOLINT: implicit by design
  /// Retries for the call's tasks.
  TaskLimits(Retries times) : retries(times.count) {}  // NOLINT: implicit by design
  /// The call's time limit, if it has one.
  std::optional<std::chrono::nanoseconds> timeout;
  /// The call's retries, if it has them.
  std::optional<int> retries;
};

/// Both limits: each set on either side (the right one wins where both set it).
inline TaskLimits operator|(TaskLimits a, const TaskLimits& b) {
  if (b.timeout) a.timeout = b.timeout;
  if (b.retries) a.retries = b.retries;
  return a;
}

namespace detail {
/// Checks options and returns the number of workers; throws std::invalid_argument.
unsigned checked_pool_size(const PoolOptions& options);
}  // namespace detail

}  // namespace mproc
