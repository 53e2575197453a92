/// @file
/// errors.hpp: the errors mproc throws, and how a task's exception crosses back —
///
///     Error                 the base of mproc's own errors (a std::runtime_error)
///     TimeoutError, Empty, Full, BrokenBarrierError, EOFError   as Python names them
///     RemoteError           a task threw a type this process cannot rebuild
///     WorkerLost            the worker process died while it ran the task
///     MemoryLimitError      ...because it ran out of its PoolOptions::memory_limit
///     SerializationError    a value could not be encoded or decoded
///     PoolNotRunning        the pool takes no more work, or dropped this work
///     Interrupted           a pool call saw SIGINT (Python's KeyboardInterrupt)
///     CancelledError        a future was cancelled or terminated (concurrent.futures')
///     register_exception<T>()   lets a user exception type cross a process boundary intact
/// Plain errors are standard: bad arguments throw std::invalid_argument, calls in the wrong state
/// std::logic_error, failed system calls std::system_error naming the call.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>

namespace mproc {

/// The base of mproc's own error types; catch it to catch them all. Not the base of the standard
/// errors mproc throws (invalid_argument, logic_error, system_error), nor of a task's own
/// exception, which is rethrown as its own type.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A blocking call with a timeout did not finish in time (Python's TimeoutError).
class TimeoutError : public Error {
 public:
  using Error::Error;
};

/// A task threw a type that mproc cannot rebuild in this process: not one of the standard types
/// it knows (matched exactly: a subclass of std::runtime_error is not rebuilt as one) and not
/// registered with register_exception<T>(). type_name() is the thrown type's demangled name,
/// what() its message.
class RemoteError : public Error {
 public:
  /// Made when the task's result arrives; what is the thrown exception's what().
  RemoteError(std::string type_name, const std::string& what) : Error(what), type_name_(std::move(type_name)) {}
  /// The thrown type's demangled name, such as "my::ParseError".
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }

 private:
  std::string type_name_;
};

/// The worker process died while it ran the task: killed by signal(), or exited with
/// exit_code(). Every task of the chunk it was running fails with it; the pool replaces the
/// worker, and chunks queued on it but not started run elsewhere. (Over task_timeout, the task
/// gets TimeoutError instead.)
class WorkerLost : public Error {
 public:
  /// Made by the pool when it sees the worker's end; what() says which worker and how it ended,
  /// and, past one, how many attempts were made (PoolOptions::retries).
  WorkerLost(pid_t pid, int signal, int exit_code, int attempts = 1);
  /// The dead worker's process id.
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  /// The signal that killed the worker (SIGKILL, SIGSEGV...).
  [[nodiscard]] int signal() const noexcept { return signal_; }        // 0 when it exited
  [[nodiscard]] int exit_code() const noexcept { return exit_code_; }  // meaningful when signal() == 0
  /// How many times the task ran, each time losing its worker: 1 + the retries made.
  [[nodiscard]] int attempts() const noexcept { return attempts_; }

  /// @fn int WorkerLost::exit_code() const noexcept
  /// The status the worker exited with (std::exit(n) or _exit(n)).

 protected:
  /// For a subclass with a message of its own.
  WorkerLost(std::string what, pid_t pid, int signal, int exit_code, int attempts);

 private:
  pid_t pid_;
  int signal_;
  int exit_code_;
  int attempts_;
};

/// The worker ran out of memory under PoolOptions::memory_limit while it ran the task: an
/// allocation failed past its limit (the task's std::bad_alloc, or the worker's death once one
/// failed), or the kernel's out-of-memory killer ended it in its cgroup. The worker is replaced,
/// and the task is retried as any WorkerLost (PoolOptions::retries).
class MemoryLimitError : public WorkerLost {
 public:
  /// Made by the pool when it sees the worker's end; what() names the limit and the usage seen.
  MemoryLimitError(pid_t pid, int signal, int exit_code, std::size_t limit, std::size_t used, int attempts = 1);
  /// The limit, in bytes (PoolOptions::memory_limit).
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
  /// The memory the worker was seen using when it ran out, in bytes (0 when unknown): with
  /// RLIMIT_DATA its private data past what it had at its start, when an allocation failed; with
  /// a cgroup, the group's peak (memory.peak).
  [[nodiscard]] std::size_t used() const noexcept { return used_; }

 private:
  std::size_t limit_;
  std::size_t used_;
};

/// An argument, result or exception could not be encoded or decoded. In a pool it fails the
/// tasks concerned (at most the rest of their chunk), never the pool.
class SerializationError : public Error {
 public:
  using Error::Error;
};

/// The pool cannot run this work: submitted after close() or terminate(); unfinished when
/// terminate() was called; or the pool has no workers left because the initializer kept failing
/// in replacements (what() says why).
class PoolNotRunning : public Error {
 public:
  using Error::Error;
};

/// get_nowait() or get(timeout) found a queue empty (Python's queue.Empty).
class Empty : public Error {
 public:
  using Error::Error;
};

/// put_nowait() or put(x, timeout) found a queue full (Python's queue.Full).
class Full : public Error {
 public:
  using Error::Error;
};

/// Barrier::wait() on a barrier that is broken (abort(), or a wait that timed out) or that was
/// broken or reset while this call waited.
class BrokenBarrierError : public Error {
 public:
  using Error::Error;
};

/// A blocking pool call (get, wait, map, imap, join, ...) saw SIGINT: Python's
/// KeyboardInterrupt. Raised only where the program installed its own SIGINT handler before it
/// built a Pool (that handler still runs); without one, SIGINT keeps its default action (the
/// program ends, and its workers with it). Queues, locks, pipes and Process are not interrupted.
class Interrupted : public Error {
 public:
  using Error::Error;
};

/// The result of a future that was cancelled (cancel() before it started) or terminated
/// (terminate()), or of the chunks of a map that such a call dropped: concurrent.futures'
/// CancelledError.
class CancelledError : public Error {
 public:
  using Error::Error;
};

/// Connection::recv() found the other end closed: every copy of it, in every process, or the
/// peer closed in the middle of a message.
class EOFError : public Error {
 public:
  using Error::Error;
};

namespace detail {
/// Builds an exception of a registered type from its message.
using ExceptionFactory = std::exception_ptr (*)(const std::string& what);
void register_exception_type(const std::type_info& type, ExceptionFactory make);
}  // namespace detail

/// Lets exceptions of type T, thrown in a task, be rethrown in the parent as T with the same
/// what(). T must be constructible from a std::string. Register before the pool is built: the
/// worker must know T to send it by name (it inherits the registry at its fork), else it arrives
/// as RemoteError. Twice is harmless; past 256 types in all, throws std::length_error.
template <class T>
void register_exception() {
  static_assert(std::is_base_of_v<std::exception, T>,
                "mproc::register_exception<T>: T must derive from std::exception");
  static_assert(std::is_constructible_v<T, std::string>,
                "mproc::register_exception<T>: T must be constructible from a std::string message");
  detail::register_exception_type(typeid(T), [](const std::string& what) { return std::make_exception_ptr(T(what)); });
}

}  // namespace mproc
