// errors.hpp: Error and the errors derived from it — TimeoutError, RemoteError, WorkerLost,
// SerializationError, PoolNotRunning, Empty, Full, BrokenBarrierError, EOFError — and
// register_exception<T>(), which lets a user exception type cross a process boundary intact.
#pragma once

#include <sys/types.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>

namespace mproc {

// The base of every error mproc raises itself. Catch this to catch them all.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A blocking call with a timeout did not finish in time (Python's TimeoutError).
class TimeoutError : public Error {
 public:
  using Error::Error;
};

// A task threw a type that mproc cannot rebuild in this process: not a standard exception and
// not registered with register_exception<T>(). type_name() is the thrown type's name.
class RemoteError : public Error {
 public:
  RemoteError(std::string type_name, const std::string& what)
      : Error(what), type_name_(std::move(type_name)) {}
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }

 private:
  std::string type_name_;
};

// The worker process died while it ran the task: killed by signal(), or exited with
// exit_code(). The pool replaces the worker; other tasks are unaffected.
class WorkerLost : public Error {
 public:
  WorkerLost(pid_t pid, int signal, int exit_code);
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] int signal() const noexcept { return signal_; }        // 0 when it exited
  [[nodiscard]] int exit_code() const noexcept { return exit_code_; }  // meaningful when signal() == 0

 private:
  pid_t pid_;
  int signal_;
  int exit_code_;
};

// An argument, result or exception could not be encoded or decoded. Fails that task only.
class SerializationError : public Error {
 public:
  using Error::Error;
};

// Work was submitted to a pool after close() or terminate().
class PoolNotRunning : public Error {
 public:
  using Error::Error;
};

// get_nowait() or get(timeout) found a queue empty (Python's queue.Empty).
class Empty : public Error {
 public:
  using Error::Error;
};

// put_nowait() or put(x, timeout) found a queue full (Python's queue.Full).
class Full : public Error {
 public:
  using Error::Error;
};

// A Barrier was aborted or reset while a process waited on it.
class BrokenBarrierError : public Error {
 public:
  using Error::Error;
};

// A blocking call (get, wait, map, join, ...) was interrupted by SIGINT: Python's
// KeyboardInterrupt. Raised only where the program installed its own SIGINT handler before
// building the pool; without one, SIGINT keeps its default action (the program ends, and its
// workers with it).
class Interrupted : public Error {
 public:
  using Error::Error;
};

// recv() found the other end of a connection closed.
class EOFError : public Error {
 public:
  using Error::Error;
};

namespace detail {
// Builds an exception of a registered type from its message.
using ExceptionFactory = std::exception_ptr (*)(const std::string& what);
void register_exception_type(const std::type_info& type, ExceptionFactory make);
}  // namespace detail

// Lets exceptions of type T, thrown in a task, be rethrown in the parent as T with the same
// what(). T must be constructible from a std::string. Register before the pool or process is
// started (a forked worker inherits the registry). Registering a type twice is harmless.
template <class T>
void register_exception() {
  static_assert(std::is_base_of_v<std::exception, T>,
                "mproc::register_exception<T>: T must derive from std::exception");
  static_assert(std::is_constructible_v<T, std::string>,
                "mproc::register_exception<T>: T must be constructible from a std::string message");
  detail::register_exception_type(typeid(T), [](const std::string& what) {
    return std::make_exception_ptr(T(what));
  });
}

}  // namespace mproc
