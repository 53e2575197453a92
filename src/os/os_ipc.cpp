#include "os/os_ipc.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "mproc/detail/wait.hpp"
#include "os/os_testing.hpp"

namespace mproc::detail::os {

using testing::Call;

namespace {
// Clock reads CLOCK_MONOTONIC: what pthread_mutex_clocklock is told to measure on.
timespec abs_monotonic(Nanos d) {
  if (d.count() < 0) d = Nanos(0);
  std::int64_t t = now_ns() + d.count();
  return timespec{static_cast<time_t>(t / 1'000'000'000), static_cast<long>(t % 1'000'000'000)};
}
void check(int rc, const char* call) {
  if (rc != 0) throw_error(rc, call);
}
}  // namespace

void robust_mutex_init(pthread_mutex_t* m, bool recursive) {
  pthread_mutexattr_t attr;
  check(::pthread_mutexattr_init(&attr), "pthread_mutexattr_init");
  check(::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED), "pthread_mutexattr_setpshared");
  check(::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST), "pthread_mutexattr_setrobust");
  check(::pthread_mutexattr_settype(&attr, recursive ? PTHREAD_MUTEX_RECURSIVE : PTHREAD_MUTEX_ERRORCHECK),
        "pthread_mutexattr_settype");
  int rc = ::pthread_mutex_init(m, &attr);
  ::pthread_mutexattr_destroy(&attr);
  check(rc, "pthread_mutex_init");
}

LockResult robust_mutex_lock(pthread_mutex_t* m, std::optional<Nanos> timeout) {
  int rc;
  if (!timeout) {
    rc = ::pthread_mutex_lock(m);
  } else if (timeout->count() <= 0) {
    rc = ::pthread_mutex_trylock(m);
  } else {
    timespec ts = abs_monotonic(*timeout);
    rc = ::pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
  }
  switch (rc) {
    case 0:
      return LockResult::acquired;
    case EOWNERDEAD:
      ::pthread_mutex_consistent(m);
      return LockResult::owner_died;
    case EBUSY:
      return LockResult::busy;
    case ETIMEDOUT:
      return LockResult::timed_out;
    case EDEADLK:
      return LockResult::deadlock;
    default:
      throw_error(rc, "pthread_mutex_lock");
  }
}

bool robust_mutex_unlock(pthread_mutex_t* m) {
  int rc = ::pthread_mutex_unlock(m);
  if (rc == EPERM) return false;
  check(rc, "pthread_mutex_unlock");
  return true;
}

pid_t robust_mutex_owner(const pthread_mutex_t* m) noexcept { return m->__data.__owner; }
unsigned robust_mutex_depth(const pthread_mutex_t* m) noexcept { return m->__data.__count; }

std::pair<Fd, Fd> stream_socketpair() {
  int fds[2];
  if (injected_failure(Call::socketpair) || ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == -1)
    throw_error(errno, "socketpair", "AF_UNIX, SOCK_STREAM");
  return {Fd(fds[0]), Fd(fds[1])};
}

void shutdown(int fd, bool read, bool write) noexcept {
  if (read && write)
    ::shutdown(fd, SHUT_RDWR);
  else if (read)
    ::shutdown(fd, SHUT_RD);
  else if (write)
    ::shutdown(fd, SHUT_WR);
}

Fd dup(int fd) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy == -1) throw_error(errno, "fcntl", "F_DUPFD_CLOEXEC, fd " + std::to_string(fd));
  return Fd(copy);
}

void send_all(int fd, const void* data, std::size_t size) {
  auto p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
    if (n == -1) {
      if (errno == EINTR) continue;
      throw_error(errno, "send", std::to_string(fd));
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

void send_all2(int fd, const void* a, std::size_t a_size, const void* b, std::size_t b_size) {
  iovec iov[2] = {{const_cast<void*>(a), a_size}, {const_cast<void*>(b), b_size}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n == -1 && errno == EINTR);
  if (n == -1) throw_error(errno, "sendmsg", std::to_string(fd));
  auto sent = static_cast<std::size_t>(n);
  if (sent < a_size) {
    send_all(fd, static_cast<const char*>(a) + sent, a_size - sent);
    sent = a_size;
  }
  send_all(fd, static_cast<const char*>(b) + (sent - a_size), b_size - (sent - a_size));
}

bool read_exact(int fd, void* data, std::size_t size) {
  auto p = static_cast<char*>(data);
  std::size_t got = 0;
  while (got < size) {
    std::size_t n = read_some(fd, p + got, size - got);
    if (n == 0) {
      if (got == 0) return false;
      throw_error(ECONNRESET, "read", std::to_string(fd) + ": peer closed mid-message");
    }
    got += n;
  }
  return true;
}

pid_t gettid() noexcept { return static_cast<pid_t>(::syscall(SYS_gettid)); }

int pidfd_poll(int pidfd, std::optional<Nanos> timeout) {
  PollFd fd{pidfd, false};
  return poll_readable_once({&fd, 1}, timeout);
}

int poll_readable_once(std::span<PollFd> fds, std::optional<Nanos> timeout) {
  constexpr std::size_t kMax = 64;
  pollfd small[kMax];
  std::vector<pollfd> big;
  pollfd* p = small;
  if (fds.size() > kMax) {
    big.resize(fds.size());
    p = big.data();
  }
  for (std::size_t i = 0; i < fds.size(); ++i) p[i] = pollfd{fds[i].fd, POLLIN, 0};
  timespec ts{};
  if (timeout) {
    auto d = timeout->count() < 0 ? 0 : timeout->count();
    ts = timespec{static_cast<time_t>(d / 1'000'000'000), static_cast<long>(d % 1'000'000'000)};
  }
  int n = ::ppoll(p, static_cast<nfds_t>(fds.size()), timeout ? &ts : nullptr, nullptr);
  if (n == -1) {
    if (errno == EINTR)
      n = 0;
    else
      throw_error(errno, "ppoll", std::to_string(fds.size()) + " fds");
  }
  for (std::size_t i = 0; i < fds.size(); ++i) fds[i].ready = n > 0 && p[i].revents != 0;
  return n;
}

namespace {

bool close_range_raw(unsigned first, unsigned last) noexcept {
  if (injected_failure(Call::close_range)) return false;
  return ::syscall(SYS_close_range, first, last, 0U) == 0;
}

// Linux's dirent64, as getdents64 fills it.
struct LinuxDirent64 {
  std::uint64_t ino;
  std::int64_t off;
  unsigned short reclen;
  unsigned char type;
  char name[1];
};

// Without close_range (before Linux 5.9, or a seccomp profile that refuses it): the descriptors
// /proc/self/fd lists, read with getdents64 into a stack buffer (opendir allocates). Listed again
// from the start until a pass finds none to close, as closing while listing may skip entries.
// false when /proc cannot be read.
bool close_listed_fds(int first, int keep) noexcept {
  const int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return false;
  for (bool closed = true; closed;) {
    closed = false;
    if (::lseek(dir, 0, SEEK_SET) != 0) break;
    alignas(LinuxDirent64) char buf[4096];
    for (long n; (n = ::syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0;) {
      for (long at = 0; at < n;) {
        const auto* d = reinterpret_cast<const LinuxDirent64*>(buf + at);
        at += d->reclen;
        int fd = 0;
        const char* c = d->name;
        for (; *c >= '0' && *c <= '9'; ++c) fd = fd * 10 + (*c - '0');
        if (c == d->name || *c != '\0' || fd < first || fd == keep || fd == dir) continue;
        ::close(fd);
        closed = true;
      }
    }
  }
  ::close(dir);
  return true;
}

}  // namespace

void close_fds_from(int first, int keep) noexcept {
  const bool split = keep >= first;
  if ((!split || keep == first || close_range_raw(static_cast<unsigned>(first), static_cast<unsigned>(keep - 1))) &&
      close_range_raw(static_cast<unsigned>(split ? keep + 1 : first), UINT_MAX))
    return;
  if (close_listed_fds(first, keep)) return;
  // No /proc either: every number a descriptor may have.
  rlimit files{};
  const rlim_t limit = ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY
                           ? std::min<rlim_t>(files.rlim_cur, rlim_t{1} << 20)
                           : rlim_t{1} << 20;
  for (rlim_t fd = static_cast<rlim_t>(first); fd < limit; ++fd)
    if (static_cast<int>(fd) != keep) ::close(static_cast<int>(fd));
}

void redirect_std_to_devnull() noexcept {
  int fd = ::open("/dev/null", O_RDWR);
  if (fd < 0) return;
  for (int i = 0; i < 3; ++i) ::dup2(fd, i);
  if (fd > 2) ::close(fd);
}

long read_raw(int fd, void* data, std::size_t size) noexcept {
  for (;;) {
    ssize_t n = ::read(fd, data, size);
    if (n == -1 && errno == EINTR) continue;
    return static_cast<long>(n);
  }
}

void shm_unlink_quiet(const char* name) noexcept { ::shm_unlink(name); }
int dup2_raw(int from, int to) noexcept { return ::dup2(from, to); }
pid_t fork_raw() noexcept { return injected_failure(Call::fork) ? -1 : ::fork(); }
int setsid_raw() noexcept { return ::setsid(); }

void* map_private_raw(std::size_t size) noexcept {
  if (injected_failure(Call::mmap)) return nullptr;
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void write_stderr(const char* text, std::size_t size) noexcept {
  while (::write(STDERR_FILENO, text, size) == -1 && errno == EINTR) {
  }
}

void install_signal_handler(int sig, void (*handler)(int, siginfo_t*, void*), int flags,
                            struct sigaction* previous) noexcept {
  struct sigaction ours {};
  ours.sa_sigaction = handler;
  ours.sa_flags = SA_SIGINFO | flags;
  sigemptyset(&ours.sa_mask);
  ::sigaction(sig, &ours, previous);
}

void restore_signal_action(int sig, const struct sigaction& action) noexcept { ::sigaction(sig, &action, nullptr); }

void call_handler(const struct sigaction& action, int sig, siginfo_t* info, void* context) noexcept {
  if (action.sa_flags & SA_SIGINFO) {
    if (action.sa_sigaction) action.sa_sigaction(sig, info, context);
  } else if (action.sa_handler != SIG_DFL && action.sa_handler != SIG_IGN) {
    action.sa_handler(sig);
  }
}

void raise_default(int sig) noexcept {
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace mproc::detail::os
