#include "os/os_limits.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <sstream>
#include <stdexcept>

#include "os/os_ipc.hpp"
#include "os/os_testing.hpp"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

namespace mproc::detail::os {
namespace {

// Reads a small file whole into buf (NUL-ended); returns its length, or -1.
ssize_t read_small(const char* path, char* buf, std::size_t size) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  std::size_t got = 0;
  while (got + 1 < size) {
    ssize_t n = ::read(fd, buf + got, size - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  buf[got] = '\0';
  return static_cast<ssize_t>(got);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw_error(errno, "open", path);
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) throw_error(n < 0 ? err : EIO, "write", path + " <- " + text);
}

bool has_word(const std::string& text, const std::string& word) {
  std::istringstream in(text);
  for (std::string w; in >> w;)
    if (w == word) return true;
  return false;
}

// The value after "key " on a line of a flat-keyed cgroup file (memory.events).
std::size_t keyed_value(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  for (std::string k, v; in >> k >> v;)
    if (k == key) return std::strtoull(v.c_str(), nullptr, 10);
  return 0;
}

// Where cgroup2 is mounted and which group its root is (mountinfo: "... root mountpoint ... -
// cgroup2 ..."); empty when it is not.
std::pair<std::string, std::string> cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream fields(line.substr(0, dash));
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    return {point, root};
  }
  return {};
}

// This process's group in the unified hierarchy ("0::/path" in /proc/self/cgroup).
std::optional<std::string> unified_group() {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return std::nullopt;
}

}  // namespace

std::size_t data_bytes() noexcept {
  char text[4096];
  if (read_small("/proc/self/status", text, sizeof text) <= 0) return 0;
  const char* at = std::strstr(text, "\nVmData:");
  if (!at) return 0;
  return static_cast<std::size_t>(std::strtoull(at + 8, nullptr, 10)) * 1024;  // in kB
}

void limit_data(std::size_t bytes) {
  rlimit limit{bytes, bytes};
  if (::setrlimit(RLIMIT_DATA, &limit) != 0) throw_error(errno, "setrlimit", "RLIMIT_DATA " + std::to_string(bytes));
}

std::optional<std::string> delegated_memory_cgroup() noexcept {
  try {
    auto [point, root] = cgroup2_mount();
    auto group = unified_group();
    if (point.empty() || !group) return std::nullopt;
    // Inside a cgroup namespace or a bind mount, the mount's root is a group of its own.
    if (root != "/") {
      if (group->rfind(root, 0) != 0) return std::nullopt;
      group->erase(0, root.size());
    }
    std::string dir = point + (*group == "/" ? "" : *group);
    if (!has_word(read_text(dir + "/cgroup.controllers"), "memory")) return std::nullopt;
    if (!has_word(read_text(dir + "/cgroup.subtree_control"), "memory")) return std::nullopt;
    if (::access(dir.c_str(), W_OK) != 0) return std::nullopt;
    return dir;
  } catch (...) {
    return std::nullopt;
  }
}

MemoryGroup::MemoryGroup(const std::string& parent_dir, const std::string& name, std::size_t limit)
    : dir_(parent_dir + "/" + name) {
  if (::mkdir(dir_.c_str(), 0700) != 0) throw_error(errno, "mkdir", dir_);
  try {
    write_text(dir_ + "/memory.max", std::to_string(limit));
    if (::access((dir_ + "/memory.swap.max").c_str(), F_OK) == 0) write_text(dir_ + "/memory.swap.max", "0");
    write_text(dir_ + "/memory.oom.group", "1");
    const std::string procs = dir_ + "/cgroup.procs";
    procs_ = Fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!procs_) throw_error(errno, "open", procs);
  } catch (...) {
    ::rmdir(dir_.c_str());
    throw;
  }
}

MemoryGroup::~MemoryGroup() {
  procs_.reset();
  // What a task started and moved out of the worker's process group is still in its cgroup.
  try {
    write_text(dir_ + "/cgroup.kill", "1");  // Linux 5.14
  } catch (...) {
  }
  for (int i = 0; i < 100 && ::rmdir(dir_.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(1000);
}

bool MemoryGroup::enter(int procs_fd) noexcept { return ::write(procs_fd, "0", 1) == 1; }

bool MemoryGroup::oom_killed() const noexcept {
  try {
    return keyed_value(read_text(dir_ + "/memory.events"), "oom_kill") > 0;
  } catch (...) {
    return false;
  }
}

std::size_t MemoryGroup::peak() const noexcept {
  try {
    for (const char* file : {"/memory.peak", "/memory.current"}) {
      char text[64];
      if (read_small((dir_ + file).c_str(), text, sizeof text) > 0) return std::strtoull(text, nullptr, 10);
    }
  } catch (...) {
  }
  return 0;
}

// --- the program's guard process -------------------------------------------------------------
namespace {

constexpr std::size_t kGuardStack = std::size_t{64} << 10;  // each step's; touched only as used

// What the guard reads, after the two stacks in its memory; the table of groups follows it.
struct GuardFrame {
  int read_fd;
  pid_t program;
  void* guard_stack;   // its top: stacks grow down
  int program_fd;      // written by the first step: the program's pidfd
  pid_t guard;         // and the guard's pid, or -1
  int error;           // and then pidfd_open's or clone's errno
  const char* failed;  // and which of the two failed

  [[nodiscard]] std::atomic<pid_t>* groups() noexcept { return reinterpret_cast<std::atomic<pid_t>*>(this + 1); }
};
static_assert(sizeof(std::atomic<pid_t>) == sizeof(pid_t) && alignof(GuardFrame) >= alignof(std::atomic<pid_t>));

constexpr std::size_t kAreaBytes =
    (2 * kGuardStack + sizeof(GuardFrame) + GuardProcess::kGroups * sizeof(pid_t) + 4095) / 4096 * 4096;

// The guard. Raw calls only, and no sanitizer instrumentation: see the header. Every signal is
// blocked (inherited from the first step, which inherited it from the creating thread): none but
// SIGKILL and SIGSTOP reaches it, and no handler of the program's runs on its stack.
__attribute__((no_sanitize("address"))) int guard_main(void* arg) {
  auto& f = *static_cast<GuardFrame*>(arg);
  // Nothing is ever written to the pipe: readable at its end. The pidfd: readable once the
  // program has ended.
  pollfd watched[2] = {{f.read_fd, POLLIN, 0}, {f.program_fd, POLLIN, 0}};
  while (::syscall(SYS_ppoll, watched, 2, nullptr, nullptr, 0) <= 0) {
  }
  const std::atomic<pid_t>* groups = f.groups();
  for (std::size_t i = 0; i < GuardProcess::kGroups; ++i)
    if (const pid_t group = groups[i].load(std::memory_order_acquire); group > 0) ::syscall(SYS_kill, -group, SIGKILL);
  ::syscall(SYS_exit_group, 0);
  return 0;
}

// The first step: runs while the creating thread is stopped, as that thread would.
int guard_setup(void* arg) {
  auto& f = *static_cast<GuardFrame*>(arg);
  const int saved_errno = errno;  // the creating thread's
  close_fds_from(3, f.read_fd);
  f.program_fd =
      injected_failure(testing::Call::pidfd_open) ? -1 : static_cast<int>(::syscall(SYS_pidfd_open, f.program, 0));
  if (f.program_fd < 0) {
    f.error = errno;
    f.failed = "pidfd_open";
  } else {
    // Not CLONE_PARENT: the guard is this step's child, and no one's once it exits.
    f.guard = injected_failure(testing::Call::clone) ? -1 : ::clone(guard_main, f.guard_stack, CLONE_VM | SIGCHLD, arg);
    f.error = f.guard < 0 ? errno : 0;
    f.failed = "clone";
  }
  errno = saved_errno;
  return 0;
}

}  // namespace

GuardProcess::GuardProcess(int read_fd) {
  area_ = injected_failure(testing::Call::mmap)
              ? MAP_FAILED
              : ::mmap(nullptr, kAreaBytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (area_ == MAP_FAILED) throw_error(errno, "mmap", "the guard process's memory");
  // A child forked later does not inherit it: its pages would turn copy-on-write, one more fault
  // each for the guard, and the child has no use for another program's table.
  ::madvise(area_, kAreaBytes, MADV_DONTFORK);  // advice: without it, only slower
  auto* base = static_cast<std::byte*>(area_);
  auto* f = new (base + 2 * kGuardStack) GuardFrame{read_fd, ::getpid(), base + 2 * kGuardStack, -1, -1, 0, nullptr};
  // Every signal blocked in the first step, and so in the guard: see guard_main.
  sigset_t all;
  sigset_t old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t setup = injected_failure(testing::Call::clone)
                          ? -1
                          : ::clone(guard_setup, base + kGuardStack, CLONE_VM | CLONE_VFORK | SIGCHLD, f);
  const int err = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (setup > 0) reap(setup);  // it has exited: CLONE_VFORK returns then
#ifdef __SANITIZE_ADDRESS__
  // The first step ran instrumented code on its stack: no poison may outlive its frames.
  __asan_unpoison_memory_region(area_, 2 * kGuardStack);
#endif
  if (setup < 0 || f->guard < 0) {
    const int failed = setup < 0 ? err : f->error;
    const char* call = setup < 0 ? "clone" : f->failed;
    ::munmap(area_, kAreaBytes);
    throw_error(failed, call, "the guard process");
  }
  pid_ = f->guard;
}

std::span<std::atomic<pid_t>> GuardProcess::groups() const noexcept {
  auto* f = reinterpret_cast<GuardFrame*>(static_cast<std::byte*>(area_) + 2 * kGuardStack);
  return {f->groups(), kGroups};
}

}  // namespace mproc::detail::os
