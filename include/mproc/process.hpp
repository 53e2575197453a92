// process.hpp: Process and what describes processes, as Python's multiprocessing has them —
//   ProcessOptions     a Process's name and daemon flag
//   Process            runs any callable with arguments in a forked child
//   ProcessInfo        a name and pid: what current_process() and parent_process() return
//   current_process(), parent_process(), active_children()
#pragma once

#include <sys/types.h>

#include <chrono>
#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/detail/shared_region.hpp"

namespace mproc {

// Options of a Process. Every field has a default.
struct ProcessOptions {
  std::string name;  // empty: "Process-N" (in a child: "Process-M:N", as Python)
  // A daemon child gets SIGKILL when the thread that called start() exits (PR_SET_PDEATHSIG),
  // however it exits. A non-daemon child outlives a parent that dies without joining it.
  bool daemon = false;
};

// Runs a callable with its arguments in a child forked by start() (multiprocessing.Process).
// The callable and arguments are copied into the Process and reach the child through fork, so
// any callable works, captures included (the child has its own copy of what they refer to);
// shared state (Queue, Lock, Value...) must exist before start(). Move-only; one thread uses a
// Process at a time. exitcode(): 0 after a normal return, n after std::exit(n), 1 when the
// callable threw (its type and what() go to stderr), -N when killed by signal N. After the
// callable returns the child leaves with _exit(): no static destructors or atexit handlers run
// there. A Process destroyed while its child runs joins it (a daemon: SIGTERM first).
class Process {
 public:
  template <class F, class... Args>
  requires std::invocable < std::decay_t<F>
  &, std::decay_t<Args>&... > explicit Process(F&& f, Args&&... args);
  template <class F, class... Args>
  requires std::invocable < std::decay_t<F>
  &, std::decay_t<Args>&... > Process(ProcessOptions options, F&& f, Args&&... args);

  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  // Forks the child. A second start() throws std::logic_error.
  void start();
  // Waits for the child to end and reaps it; signals arriving meanwhile do not interrupt it.
  // Throws std::logic_error before start().
  void join() { join_ns({}); }
  // Waits at most timeout; true when the child has ended.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_ns(detail::to_nanos(timeout));
  }
  // Started and not yet ended; a child that has ended is reaped here.
  [[nodiscard]] bool is_alive();
  // Send SIGTERM / SIGKILL through the pidfd (never to a recycled pid); no effect before start()
  // or once the child's end was seen. Neither waits: join() after.
  void terminate();
  void kill();
  // Releases the pidfd and the callable; throws std::logic_error while the child runs. The
  // exit code stays; sentinel() is -1 from now on.
  void close();

  // nullopt before start() and while the child runs; reaps it once it has ended.
  [[nodiscard]] std::optional<int> exitcode();
  // 0 before start().
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] bool daemon() const noexcept { return daemon_; }
  // A pidfd, readable once the child has ended: for mproc::wait() or poll(). -1 before start().
  [[nodiscard]] int sentinel() const noexcept { return pidfd_; }

  // Both join forms: nullopt waits forever.
  bool join_ns(detail::OptNanos timeout);

  // The type-erased callable and its arguments; not for users.
  struct Body {
    virtual ~Body() = default;
    virtual void run() = 0;
  };

 private:
  template <class F, class Tuple>
  struct BodyOf;
  Process(ProcessOptions options, std::unique_ptr<Body> body);
  void signal(int sig);
  void record(int code_or_minus_signal) noexcept;

  std::unique_ptr<Body> body_;
  std::string name_;
  bool daemon_ = false;
  std::vector<int> identity_;  // Python's _identity: the name's numbers
  pid_t pid_ = 0;
  int pidfd_ = -1;
  bool started_ = false;
  std::optional<int> exitcode_;
};

// A process's name and pid, as current_process() and parent_process() describe them.
class ProcessInfo {
 public:
  ProcessInfo(std::string name, pid_t pid, bool daemon) : name_(std::move(name)), pid_(pid), daemon_(daemon) {}
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] bool daemon() const noexcept { return daemon_; }

 private:
  std::string name_;
  pid_t pid_;
  bool daemon_;
};

// This process: "MainProcess" in the program itself, the Process's name in a child. A Pool
// worker is not a Process: it reports "MainProcess", with its own pid.
[[nodiscard]] ProcessInfo current_process();
// The Process's parent, in a child of start(); nullopt in the program itself and in Pool workers.
[[nodiscard]] std::optional<ProcessInfo> parent_process();
// The Processes this process started that are still running (finished ones are reaped). The
// pointers are valid while those Process objects live; safe to call from any thread.
[[nodiscard]] std::vector<Process*> active_children();

// --- definitions --------------------------------------------------------------------------------

template <class F, class Tuple>
struct Process::BodyOf final : Process::Body {
  BodyOf(F f, Tuple args) : f_(std::move(f)), args_(std::move(args)) {}
  void run() override { std::apply(f_, args_); }
  F f_;
  Tuple args_;
};

template <class F, class... Args>
requires std::invocable < std::decay_t<F>
&, std::decay_t<Args>&... > Process::Process(F&& f, Args&&... args)
    : Process(ProcessOptions{}, std::forward<F>(f), std::forward<Args>(args)...) {}

template <class F, class... Args>
requires std::invocable < std::decay_t<F>
&, std::decay_t<Args>&... > Process::Process(ProcessOptions options, F&& f, Args&&... args)
    : Process(std::move(options),
              std::make_unique<BodyOf<std::decay_t<F>, std::tuple<std::decay_t<Args>...>>>(
                  std::forward<F>(f), std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...))) {}

}  // namespace mproc
