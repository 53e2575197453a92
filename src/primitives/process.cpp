// Process: fork in start(), a pidfd to wait on and signal, the child's identity kept in globals
// that the fork copies and the child then rewrites.
#include "mproc/process.hpp"

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <new>
#include <stdexcept>
#include <typeinfo>

#include "demangle.hpp"
#include "mproc/shared_heap.hpp"
#include "os/os.hpp"
#include "os/os_ipc.hpp"
#include "worker_identity.hpp"

namespace mproc {
namespace {

namespace os = detail::os;

// This process's identity; rewritten in each child right after the fork. Made before main
// (constinit), not by its first use: a pool worker's first use is in the child, where a guarded
// static's construction writes two more pages (its guard, the exit list) than the worker must.
struct Self {
  std::optional<std::string> given_name;  // none: "MainProcess"
  bool daemon = false;
  std::vector<int> identity;  // empty in the program itself
  int counter = 0;            // children started so far, for their names
  std::optional<ProcessInfo> parent;

  [[nodiscard]] std::string name() const { return given_name.value_or("MainProcess"); }
};

constinit Self g_self;

// worker_id(): a worker thread's number, else this process's (a Pool worker, an MPI rank).
thread_local std::optional<unsigned> t_worker_id;
std::optional<unsigned> g_worker_id;

// The started, not yet destroyed Processes of this process, for active_children().
std::mutex* g_registry_mu = new std::mutex;  // replaced in a child: a fork may copy it locked
std::vector<Process*>& registry() {
  static auto* r = new std::vector<Process*>;
  return *r;
}

void registry_replace(Process* from, Process* to) {
  std::lock_guard hold(*g_registry_mu);
  auto& r = registry();
  auto it = std::find(r.begin(), r.end(), from);
  if (it == r.end()) {
    if (to && !from) r.push_back(to);
    return;
  }
  if (to)
    *it = to;
  else
    r.erase(it);
}

std::string name_of(const std::vector<int>& identity) {
  std::string name = "Process-";
  for (std::size_t i = 0; i < identity.size(); ++i) {
    if (i) name += ':';
    name += std::to_string(identity[i]);
  }
  return name;
}

[[noreturn]] void run_child(Process::Body& body, const std::string& name) noexcept {
  int code = 0;
  try {
    body.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "Process %s:\n%s: %s\n", name.c_str(), detail::demangle(typeid(e)).c_str(), e.what());
    code = 1;
  } catch (...) {
    std::fprintf(stderr, "Process %s:\nan exception that is not a std::exception\n", name.c_str());
    code = 1;
  }
  os::flush_stdio();
  os::exit_now(code);
}

}  // namespace

Process::Process(ProcessOptions options, std::unique_ptr<Body> body)
    : body_(std::move(body)), name_(std::move(options.name)), daemon_(options.daemon) {
  identity_ = g_self.identity;
  identity_.push_back(++g_self.counter);
  if (name_.empty()) name_ = name_of(identity_);
}

Process::Process(Process&& other) noexcept
    : body_(std::move(other.body_)),
      name_(std::move(other.name_)),
      daemon_(other.daemon_),
      identity_(std::move(other.identity_)),
      pid_(std::exchange(other.pid_, 0)),
      pidfd_(std::exchange(other.pidfd_, -1)),
      started_(std::exchange(other.started_, false)),
      closed_(other.closed_),
      exitcode_(other.exitcode_),
      kept_(std::move(other.kept_)) {
  if (started_) registry_replace(&other, this);
}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    this->~Process();
    ::new (this) Process(std::move(other));
  }
  return *this;
}

Process::~Process() {
  if (!started_) return;
  try {
    if (pidfd_ >= 0 && !exitcode_) {
      if (daemon_) terminate();
      join();
    }
  } catch (...) {
  }
  registry_replace(this, nullptr);
  if (pidfd_ >= 0) os::Fd closer(pidfd_);
}

void Process::start() {
  check_open();
  if (started_) throw std::logic_error("mproc::Process::start: a process can only be started once");
  if (!body_) throw std::logic_error("mproc::Process::start: the process was moved from");
  Self& me = g_self;
  ProcessInfo parent(me.name(), os::getpid(), me.daemon);
  detail::ensure_heap();  // the child inherits the shared heap at the same address
  os::flush_stdio();
  pid_t pid = os::fork();
  if (pid == 0) {
    // Such as a Pool's watchdog write end: its workers see their parent gone only once every
    // copy is closed.
    os::close_parent_only_fds();
    me.parent = parent;
    me.given_name = name_;
    me.daemon = daemon_;
    me.identity = identity_;
    me.counter = 0;
    t_worker_id.reset();  // a Process started by a pool's task is no worker of that pool
    g_worker_id.reset();
    g_registry_mu = new std::mutex;
    registry().clear();
    if (daemon_) {
      os::set_parent_death_signal(SIGKILL);
      if (os::getppid() != parent.pid()) os::exit_now(1);  // the parent died before the prctl
    }
    run_child(*body_, name_);
  }
  pid_ = pid;
  try {
    pidfd_ = os::pidfd_open(pid).release();
  } catch (...) {
    os::kill(pid, SIGKILL);
    os::reap(pid);
    throw;
  }
  started_ = true;
  // The child's alone now: the parent's copies of its arguments must not linger. But the child's
  // inherited handles to shared objects borrow the parent's references (heap_object.hpp): those
  // are kept until the child is reaped.
  kept_ = body_->shared_objects();
  body_.reset();
  registry_replace(nullptr, this);
}

void Process::check_open() const {
  if (closed_) throw std::logic_error("mproc::Process: process object is closed");
}

void Process::record(int code_or_minus_signal) noexcept {
  exitcode_ = code_or_minus_signal;
  kept_.clear();  // the child is gone: its shared objects need the parent's references no more
}

std::optional<int> Process::exitcode() {
  check_open();
  if (exitcode_ || pidfd_ < 0) return exitcode_;
  if (auto st = os::wait_pidfd(pidfd_, false)) record(st->signaled ? -st->signal : st->code);
  return exitcode_;
}

bool Process::join_ns(detail::OptNanos timeout) {
  check_open();
  if (!started_) throw std::logic_error("mproc::Process::join: the process was not started");
  if (exitcode_) return true;
  if (timeout) {
    const detail::Deadline deadline = detail::deadline_after(timeout);
    for (;;) {
      const detail::OptNanos left = detail::time_left(deadline);
      if (os::pidfd_poll(pidfd_, left) > 0) break;
      if (*left == detail::Nanos::zero()) return false;
    }
  }
  auto st = os::wait_pidfd(pidfd_, true);
  record(st->signaled ? -st->signal : st->code);
  return true;
}

bool Process::is_alive() {
  check_open();
  return started_ && !exitcode();
}

void Process::signal(int sig) {
  check_open();
  if (!started_ || exitcode_) return;
  os::pidfd_send_signal(pidfd_, sig);
}

void Process::terminate() { signal(SIGTERM); }
void Process::kill() { signal(SIGKILL); }

void Process::close() {
  if (closed_) return;
  if (started_ && !exitcode()) throw std::logic_error("mproc::Process::close: the process is still running");
  if (pidfd_ >= 0) os::Fd closer(std::exchange(pidfd_, -1));
  body_.reset();
  registry_replace(this, nullptr);
  closed_ = true;
}

ProcessInfo current_process() {
  const Self& me = g_self;
  return ProcessInfo(me.name(), os::getpid(), me.daemon);
}

std::optional<ProcessInfo> parent_process() { return g_self.parent; }

std::optional<unsigned> worker_id() noexcept { return t_worker_id ? t_worker_id : g_worker_id; }

std::vector<Process*> active_children() {
  std::vector<Process*> all;
  {
    std::lock_guard hold(*g_registry_mu);
    all = registry();
  }
  std::vector<Process*> alive;
  for (Process* p : all)
    if (p->is_alive()) alive.push_back(p);
  return alive;
}

}  // namespace mproc

namespace mproc::detail {

void become_pool_worker(unsigned id, pid_t parent) noexcept {
  Self& me = g_self;
  try {
    me.parent = ProcessInfo(me.name(), parent, me.daemon);
    me.given_name = "PoolWorker-" + std::to_string(id);
  } catch (...) {
    // Out of memory right after the fork: the worker keeps the program's name.
  }
  me.counter = 0;
  g_registry_mu = new std::mutex;  // as in a Process's child: the fork may have copied it locked
  registry().clear();              // the program's children are not the worker's
  t_worker_id.reset();
  g_worker_id = id;
}

void set_process_worker_id(unsigned id) noexcept { g_worker_id = id; }
void set_thread_worker_id(unsigned id) noexcept { t_worker_id = id; }

}  // namespace mproc::detail
