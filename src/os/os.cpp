#include "os/os.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "os/os_ipc.hpp"
#include "os/os_testing.hpp"

namespace mproc::detail::os {

using testing::Call;

namespace {

// Calls f until it does not fail with EINTR; throws on any other failure.
template <class F>
auto retry(std::string_view call, std::string_view arg, F&& f) {
  for (;;) {
    auto r = f();
    if (r != -1) return r;
    if (errno != EINTR) throw_error(errno, call, arg);
  }
}

timespec to_timespec(Nanos d) {
  if (d.count() < 0) d = Nanos(0);
  return timespec{static_cast<time_t>(d.count() / 1'000'000'000), static_cast<long>(d.count() % 1'000'000'000)};
}

}  // namespace

void throw_error(int err, std::string_view call, std::string_view arg) {
  std::string what(call);
  what += '(';
  what += arg;
  what += ')';
  throw std::system_error(err, std::system_category(), what);
}

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

void Fd::reset() noexcept {
  // close() is not retried on EINTR: on Linux the descriptor is released either way.
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

pid_t fork() {
  return retry("fork", {}, [] { return injected_failure(Call::fork) ? -1 : ::fork(); });
}

void exit_now(int code) noexcept { ::_exit(code); }

Fd pidfd_open(pid_t pid) {
  // pidfds are close-on-exec by construction.
  auto fd = retry("pidfd_open", std::to_string(pid), [&] {
    return injected_failure(Call::pidfd_open) ? -1 : static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  });
  return Fd(fd);
}

void kill(pid_t pid, int sig) {
  if (::kill(pid, sig) == -1 && errno != ESRCH)
    throw_error(errno, "kill", std::to_string(pid) + ", " + std::to_string(sig));
}

void kill_group(pid_t pgid, int sig) {
  if (pgid <= 0) return;  // kill(0) or kill(-1) would reach far more than one group
  if (::kill(-pgid, sig) == -1 && errno != ESRCH && errno != EPERM)
    throw_error(errno, "kill", "-" + std::to_string(pgid) + ", " + std::to_string(sig));
}

bool lead_process_group(pid_t pid) noexcept { return ::setpgid(pid, pid == 0 ? 0 : pid) == 0; }

void pidfd_send_signal(int pidfd, int sig) {
  if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == -1 && errno != ESRCH)
    throw_error(errno, "pidfd_send_signal", std::to_string(pidfd) + ", " + std::to_string(sig));
}

std::optional<ExitStatus> wait_pidfd(int pidfd, bool block) {
  siginfo_t info{};
  int flags = WEXITED | (block ? 0 : WNOHANG);
  retry("waitid", "P_PIDFD " + std::to_string(pidfd),
        [&] { return ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, flags); });
  if (info.si_pid == 0) return std::nullopt;  // WNOHANG and still running
  ExitStatus status;
  if (info.si_code == CLD_EXITED) {
    status.code = info.si_status;
  } else {
    status.signaled = true;
    status.signal = info.si_status;
  }
  return status;
}

void set_parent_death_signal(int sig) {
  retry("prctl", "PR_SET_PDEATHSIG", [&] { return ::prctl(PR_SET_PDEATHSIG, sig); });
}

pid_t getppid() noexcept { return ::getppid(); }
pid_t getpid() noexcept { return ::getpid(); }
void ignore_signal(int sig) noexcept { ::signal(sig, SIG_IGN); }
void flush_stdio() noexcept { std::fflush(nullptr); }

void reap(pid_t pid) noexcept {
  while (::waitpid(pid, nullptr, 0) == -1 && errno == EINTR) {
  }
}

bool futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::optional<Nanos> timeout,
                bool shared) {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  timespec ts{};
  if (timeout) ts = to_timespec(*timeout);
  int op = FUTEX_WAIT | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  long r = ::syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), op, expected, timeout ? &ts : nullptr,
                     nullptr, 0);
  if (r == 0) return true;
  switch (errno) {
    case EAGAIN:  // the word had already changed
    case EINTR:   // the caller re-checks its condition either way
      return true;
    case ETIMEDOUT:
      return false;
    default:
      throw_error(errno, "futex", "FUTEX_WAIT");
  }
}

void futex_wake(const std::atomic<std::uint32_t>& word, int count, bool shared) noexcept {
  int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  ::syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), op, count, nullptr, nullptr, 0);
}

int poll_readable(std::span<PollFd> fds, std::optional<Nanos> timeout) {
  std::vector<pollfd> pfds(fds.size());
  for (std::size_t i = 0; i < fds.size(); ++i) pfds[i] = pollfd{fds[i].fd, POLLIN, 0};
  timespec ts{};
  if (timeout) ts = to_timespec(*timeout);
  int n = retry("ppoll", std::to_string(fds.size()) + " fds", [&] {
    return ::ppoll(pfds.data(), static_cast<nfds_t>(pfds.size()), timeout ? &ts : nullptr, nullptr);
  });
  for (std::size_t i = 0; i < fds.size(); ++i) fds[i].ready = pfds[i].revents != 0;
  return n;
}

void* map_shared_anonymous(std::size_t size) {
  void* p = injected_failure(Call::mmap)
                ? MAP_FAILED
                : ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw_error(errno, "mmap", "MAP_SHARED|MAP_ANONYMOUS, " + std::to_string(size));
  return p;
}

std::pair<void*, std::size_t> reserve_shared_anonymous(std::size_t size, std::size_t min_size) {
  for (;;) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
      ::madvise(p, size, MADV_DONTDUMP);  // advice only: a failure costs nothing but a bigger core
      return {p, size};
    }
    if (errno != ENOMEM || size / 2 < min_size)
      throw_error(errno, "mmap", "MAP_SHARED|MAP_ANONYMOUS|MAP_NORESERVE, " + std::to_string(size));
    size /= 2;
  }
}

void release_shared_pages(void* addr, std::size_t size) noexcept {
  if (size) ::madvise(addr, size, MADV_REMOVE);  // advice only: pages kept stay correct
}

std::size_t resident_bytes() noexcept {
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[128];
  ssize_t n = -1;
  while ((n = ::read(fd, text, sizeof text - 1)) == -1 && errno == EINTR) {
  }
  ::close(fd);
  if (n <= 0) return 0;
  text[n] = '\0';
  unsigned long long size = 0, resident = 0;  // in pages: total, then resident
  if (std::sscanf(text, "%llu %llu", &size, &resident) != 2) return 0;
  return static_cast<std::size_t>(resident) * page_size();
}

bool process_exists(pid_t pid) noexcept { return ::kill(pid, 0) == 0 || errno != ESRCH; }

void* map_fd(int fd, std::size_t size) {
  void* p =
      injected_failure(Call::mmap) ? MAP_FAILED : ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw_error(errno, "mmap", "fd " + std::to_string(fd) + ", " + std::to_string(size));
  return p;
}

void unmap(void* addr, std::size_t size) noexcept {
  if (addr) ::munmap(addr, size);
}

Fd shm_open(const std::string& name, int flags, unsigned mode) {
  return Fd(retry("shm_open", name, [&] {
    return injected_failure(Call::shm_open) ? -1 : ::shm_open(name.c_str(), flags | O_CLOEXEC, mode);
  }));
}

Fd memfd_create(const std::string& name) {
  return Fd(retry("memfd_create", name, [&] {
    return injected_failure(Call::memfd_create) ? -1 : ::memfd_create(name.c_str(), MFD_CLOEXEC);
  }));
}

void shm_unlink(const std::string& name) {
  if (::shm_unlink(name.c_str()) == -1) throw_error(errno, "shm_unlink", name);
}

void ftruncate(int fd, std::size_t size) {
  retry("ftruncate", std::to_string(fd) + ", " + std::to_string(size),
        [&] { return injected_failure(Call::ftruncate) ? -1 : ::ftruncate(fd, static_cast<off_t>(size)); });
}

std::size_t file_size(int fd) {
  struct stat st {};
  retry("fstat", std::to_string(fd), [&] { return ::fstat(fd, &st); });
  return static_cast<std::size_t>(st.st_size);
}

std::size_t page_size() noexcept {
  static const auto size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

std::optional<FileStamp> file_stamp(const std::string& path) noexcept {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileStamp{static_cast<std::uint64_t>(st.st_size), static_cast<std::int64_t>(st.st_mtime)};
}

std::pair<Fd, Fd> pipe() {
  int fds[2];
  retry("pipe2", "O_CLOEXEC", [&] { return injected_failure(Call::pipe) ? -1 : ::pipe2(fds, O_CLOEXEC); });
  return {Fd(fds[0]), Fd(fds[1])};
}

std::size_t write_some(int fd, const void* data, std::size_t size) {
  return static_cast<std::size_t>(retry("write", std::to_string(fd), [&] { return ::write(fd, data, size); }));
}

std::size_t read_some(int fd, void* data, std::size_t size) {
  return static_cast<std::size_t>(retry("read", std::to_string(fd), [&] { return ::read(fd, data, size); }));
}

void write_all(int fd, const void* data, std::size_t size) {
  auto p = static_cast<const char*>(data);
  while (size > 0) {
    std::size_t n = write_some(fd, p, size);
    p += n;
    size -= n;
  }
}

void set_nonblocking(int fd, bool on) {
  int flags = retry("fcntl", "F_GETFL", [&] { return ::fcntl(fd, F_GETFL); });
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  retry("fcntl", "F_SETFL", [&] { return ::fcntl(fd, F_SETFL, flags); });
}

void redirect(int fd, int target) noexcept {
  while (::dup2(fd, target) == -1 && errno == EINTR) {
  }
}

void line_buffer_stdout() noexcept { std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ); }

void drain_nonblocking(int fd) noexcept {
  char buf[256];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
}

bool is_terminal(int fd) noexcept { return ::isatty(fd) == 1; }

std::optional<unsigned> terminal_columns(int fd) noexcept {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return std::nullopt;
  return ws.ws_col;
}

namespace {
std::atomic<int> g_parent_only_fds[256] = {};  // 0: free slot; else fd + 1

struct sigaction g_chained[NSIG];  // the program's handler, per signal we put a note in front of
void (*g_notes[NSIG])(int);
std::mutex g_chain_mu;  // serializes installing; never taken in a handler

void chained_handler(int sig, siginfo_t* info, void* context) {
  if (g_notes[sig]) g_notes[sig](sig);
  call_handler(g_chained[sig], sig, info, context);
}
}  // namespace

bool chain_signal_handler(int sig, void (*note)(int)) noexcept {
  std::lock_guard lock(g_chain_mu);
  struct sigaction current {};
  if (::sigaction(sig, nullptr, &current) != 0) return false;
  bool siginfo = (current.sa_flags & SA_SIGINFO) != 0;
  if (siginfo && current.sa_sigaction == chained_handler) return true;
  if (!siginfo && (current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN)) return false;
  g_chained[sig] = current;
  g_notes[sig] = note;
  struct sigaction ours = current;
  ours.sa_sigaction = chained_handler;
  ours.sa_flags = (current.sa_flags | SA_SIGINFO) & ~static_cast<int>(SA_RESTART | SA_RESETHAND);
  return ::sigaction(sig, &ours, nullptr) == 0;
}

BlockSignals::BlockSignals(std::initializer_list<int> signals) noexcept {
  static_assert(sizeof(old_) >= sizeof(sigset_t));
  sigset_t set;
  sigemptyset(&set);
  for (int sig : signals) sigaddset(&set, sig);
  ::pthread_sigmask(SIG_BLOCK, &set, reinterpret_cast<sigset_t*>(old_));
}

BlockSignals::~BlockSignals() { ::pthread_sigmask(SIG_SETMASK, reinterpret_cast<sigset_t*>(old_), nullptr); }

void at_fork(void (*prepare)(), void (*parent)(), void (*child)()) {
  if (int err = ::pthread_atfork(prepare, parent, child)) throw_error(err, "pthread_atfork", "");
}

void register_parent_only_fd(int fd) noexcept {
  for (auto& slot : g_parent_only_fds) {
    int expected = 0;
    if (slot.compare_exchange_strong(expected, fd + 1)) return;
  }
}

void unregister_parent_only_fd(int fd) noexcept {
  for (auto& slot : g_parent_only_fds) {
    int expected = fd + 1;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

void close_parent_only_fds() noexcept {
  for (auto& slot : g_parent_only_fds) {
    int v = slot.exchange(0);
    if (v > 0) ::close(v - 1);
  }
}

bool hung_up(int fd) noexcept {
  pollfd p{fd, POLLIN, 0};
  int n = ::poll(&p, 1, 0);
  return n > 0 && (p.revents & (POLLHUP | POLLERR | POLLIN)) != 0;
}

void random_bytes(void* data, std::size_t size) {
  auto p = static_cast<char*>(data);
  while (size > 0) {
    auto n = retry("getrandom", std::to_string(size), [&] { return ::getrandom(p, size, 0); });
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

unsigned online_cpus() noexcept {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 1U;
}

unsigned affinity_cpus() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return online_cpus();
  int n = CPU_COUNT(&set);
  return n > 0 ? static_cast<unsigned>(n) : 1U;
}

}  // namespace mproc::detail::os
