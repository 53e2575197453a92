/// @file
/// process.hpp: Process and what describes processes, as Python's multiprocessing has them —
///
///     ProcessOptions     a Process's name and daemon flag
///     Process            runs any callable with arguments in a forked child
///     ProcessInfo        a name and pid: what current_process() and parent_process() return
///     current_process(), parent_process(), active_children()
///     worker_id()        which worker of its pool the caller is
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

#include "mproc/detail/heap_object.hpp"
#include "mproc/detail/wait.hpp"

namespace mproc {

namespace detail {
/// A callable the child can call with its arguments: as lvalues (so it may take them by
/// reference) or, failing that, as rvalues (so it may take move-only ones by value).
template <class F, class... Args>
concept RunnableWith = std::invocable<F&, Args&...> || std::invocable<F&, Args...>;

/// A handle that owns a descriptor (a Connection) has a copy_for_child() found by ADL: what a
/// Process keeps when given such a handle as an lvalue, instead of copying or taking it.
template <class A>
concept CopiedForChild = requires(const A& a) {
  copy_for_child(a);
};

template <class A>
decltype(auto) child_argument(A&& a) {
  if constexpr (std::is_lvalue_reference_v<A> && CopiedForChild<std::remove_cvref_t<A>>)
    return copy_for_child(a);
  else
    return std::forward<A>(a);
}
}  // namespace detail

/// Options of a Process. Every field has a default.
struct ProcessOptions {
  /// The name the Process and, in its child, current_process() report.
  std::string name;  // empty: "Process-N" (in a child: "Process-M:N", as Python)
  /// A daemon child gets SIGKILL when the thread that called start() exits (PR_SET_PDEATHSIG),
  /// however it exits. A non-daemon child outlives a parent that dies without joining it.
  bool daemon = false;
};

/// Runs a callable with its arguments in a child forked by start() (multiprocessing.Process).
/// The callable and arguments are copied into the Process and reach the child through fork, so
/// any callable works, captures included (the child has its own copy of what they refer to).
/// Shared objects (Queue, Lock, Value...) passed as arguments are the same objects in the child;
/// the Process keeps them alive until the child is reaped, even when the caller drops its own. One
/// made after start() reaches the child as a Queue or Pipe item. A Connection passed as an
/// lvalue is kept as a duplicate of its fd: the caller's end stays the caller's to close, as in
/// Python (close a writer's end in the parent after start(), and its recv() sees EOFError once
/// the child ends). start() drops the Process's copies in the parent (Python deletes its target
/// and args there too): only the child keeps them. Move-only; one thread uses a
/// Process at a time. exitcode(): 0 after a normal return, n after std::exit(n), 1 when the
/// callable threw (its type and what() go to stderr), -N when killed by signal N. After the
/// callable returns the child leaves with _exit(): no static destructors or atexit handlers run
/// there. A Process destroyed while its child runs joins it (a daemon: SIGTERM first).
class Process {
 public:
  /// A Process that will run f(args...) in its child, named and flagged by options. Nothing is
  /// forked before start(). An f that cannot be called with args does not compile.
  ///@{
  template <class F, class... Args>
  requires detail::RunnableWith<std::decay_t<F>, std::decay_t<Args>...>
  explicit Process(F&& f, Args&&... args);
  template <class F, class... Args>
  requires detail::RunnableWith<std::decay_t<F>, std::decay_t<Args>...> Process(ProcessOptions options, F&& f,
                                                                                Args&&... args);
  ///@}

  /// Takes over other's child; other is left empty. Assigning to a Process whose child runs
  /// first waits for that child, as the destructor does.
  ///@{
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  ///@}
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  /// Forks the child. A second start() throws std::logic_error. After close(), every method but
  /// close(), name() and daemon() throws std::logic_error ("process object is closed", Python's
  /// ValueError); a second close() does nothing.
  void start();
  /// Waits for the child to end and reaps it; signals arriving meanwhile do not interrupt it.
  /// Throws std::logic_error before start().
  void join() { join_ns({}); }
  /// Waits at most timeout; true when the child has ended.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_ns(detail::to_nanos(timeout));
  }
  /// Started and not yet ended; a child that has ended is reaped here.
  [[nodiscard]] bool is_alive();
  /// Send SIGTERM / SIGKILL through the pidfd (never to a recycled pid); no effect before start()
  /// or once the child's end was seen. Neither waits: join() after.
  ///@{
  void terminate();
  void kill();
  ///@}
  /// Releases the pidfd and the callable; throws std::logic_error while the child runs.
  void close();

  /// nullopt before start() and while the child runs; reaps it once it has ended.
  [[nodiscard]] std::optional<int> exitcode();
  /// 0 before start().
  [[nodiscard]] pid_t pid() const {
    check_open();
    return pid_;
  }
  /// ProcessOptions::name, or the name given for it.
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// ProcessOptions::daemon.
  [[nodiscard]] bool daemon() const noexcept { return daemon_; }
  /// A pidfd, readable once the child has ended: for mproc::wait() or poll(). -1 before start().
  [[nodiscard]] int sentinel() const {
    check_open();
    return pidfd_;
  }

  /// Both join forms: nullopt waits forever.
  bool join_ns(detail::OptNanos timeout);

  /// The type-erased callable and its arguments; not for users.
  struct Body {
    virtual ~Body() = default;
    /// Calls the callable with its arguments, in the child.
    virtual void run() = 0;
    /// Copies of the arguments that are shared objects (detail::CrossesAsHandle), each kept
    /// alive for the child until it is reaped.
    [[nodiscard]] virtual std::vector<std::shared_ptr<void>> shared_objects() const = 0;
  };

 private:
  template <class F, class Tuple>
  struct BodyOf;
  Process(ProcessOptions options, std::unique_ptr<Body> body);
  void signal(int sig);
  void record(int code_or_minus_signal) noexcept;
  void check_open() const;

  std::unique_ptr<Body> body_;
  std::string name_;
  bool daemon_ = false;
  std::vector<int> identity_;  // Python's _identity: the name's numbers
  pid_t pid_ = 0;
  int pidfd_ = -1;
  bool started_ = false;
  bool closed_ = false;
  std::optional<int> exitcode_;
  std::vector<std::shared_ptr<void>> kept_;  // the child's shared objects, until it is reaped
};

/// A process's name and pid, as current_process() and parent_process() describe them.
class ProcessInfo {
 public:
  /// Made by current_process() and parent_process().
  ProcessInfo(std::string name, pid_t pid, bool daemon) : name_(std::move(name)), pid_(pid), daemon_(daemon) {}
  /// "MainProcess", or the Process's name.
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// The process id.
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  /// Whether the process is a daemon Process.
  [[nodiscard]] bool daemon() const noexcept { return daemon_; }

 private:
  std::string name_;
  pid_t pid_;
  bool daemon_;
};

/// This process: "MainProcess" in the program itself, the Process's name in a child, and
/// "PoolWorker-N" in a Pool worker, N being its worker_id() (Python: "ForkPoolWorker-N").
[[nodiscard]] ProcessInfo current_process();
/// The Process's parent, in a child of start(); in a Pool worker, the program that made the pool;
/// nullopt in the program itself.
[[nodiscard]] std::optional<ProcessInfo> parent_process();
/// Which worker of its pool the caller is: 0..processes-1 in a Pool worker (a worker that replaces
/// another takes its number, so at any time each number belongs to one live worker), the worker
/// thread's number in a ThreadPool, the MPI rank's number (1..size-1) in an MpiPool worker rank;
/// nullopt anywhere else, such as the program's own threads and the children of Process (mpire's
/// worker_id, BS::thread_pool's get_index). Safe to call from any thread.
[[nodiscard]] std::optional<unsigned> worker_id() noexcept;
/// The Processes this process started that are still running (finished ones are reaped). The
/// pointers are valid while those Process objects live; safe to call from any thread.
[[nodiscard]] std::vector<Process*> active_children();

// --- definitions --------------------------------------------------------------------------------

/// The Body of a callable F and its arguments, kept as a Tuple.
template <class F, class Tuple>
struct Process::BodyOf final : Process::Body {
  BodyOf(F f, Tuple args) : f_(std::move(f)), args_(std::move(args)) {}
  void run() override { run_with(std::make_index_sequence<std::tuple_size_v<Tuple>>{}); }
  template <std::size_t... I>
  void run_with(std::index_sequence<I...>) {
    if constexpr (std::invocable<F&, std::tuple_element_t<I, Tuple>&...>)
      std::invoke(f_, std::get<I>(args_)...);
    else
      std::invoke(f_, std::move(std::get<I>(args_))...);
  }
  std::vector<std::shared_ptr<void>> shared_objects() const override {
    std::vector<std::shared_ptr<void>> kept;
    std::apply(
        [&kept](const auto&... a) {
          [[maybe_unused]] auto keep = [&kept]<class A>(const A& x) {
            if constexpr (detail::CrossesAsHandle<A> && std::is_copy_constructible_v<A>)
              kept.push_back(std::make_shared<A>(x));
          };
          (keep(a), ...);
        },
        args_);
    return kept;
  }
  F f_;
  Tuple args_;
};

template <class F, class... Args>
requires detail::RunnableWith<std::decay_t<F>, std::decay_t<Args>...> Process::Process(F&& f, Args&&... args)
    : Process(ProcessOptions{}, std::forward<F>(f), std::forward<Args>(args)...) {}

template <class F, class... Args>
requires detail::RunnableWith<std::decay_t<F>, std::decay_t<Args>...> Process::Process(ProcessOptions options, F&& f,
                                                                                       Args&&... args)
    : Process(std::move(options),
              std::make_unique<BodyOf<std::decay_t<F>, std::tuple<std::decay_t<Args>...>>>(
                  std::forward<F>(f),
                  std::tuple<std::decay_t<Args>...>(detail::child_argument<Args>(std::forward<Args>(args))...))) {}

}  // namespace mproc
