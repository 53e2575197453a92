// os.hpp: thin wrappers over the system calls mproc uses — fork, pidfd, waitid, signals, futex,
// shared mappings, shm, pipes, poll. EINTR is retried; failures throw std::system_error naming
// the call and its argument. Nothing outside src/os/ calls the system directly.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace mproc::detail::os {

// Throws std::system_error(err) with "call(arg)" as its message.
[[noreturn]] void throw_error(int err, std::string_view call, std::string_view arg = {});

// A file descriptor with exactly one owner; closes on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset() noexcept;

 private:
  int fd_ = -1;
};

// --- processes ---------------------------------------------------------------------------
pid_t fork();
[[noreturn]] void exit_now(int code) noexcept;  // _exit: no atexit handlers, no stdio flush
Fd pidfd_open(pid_t pid);
void kill(pid_t pid, int sig);  // ESRCH (already gone) is not an error
// Signals every process of the process group pgid; ESRCH (none left) and EPERM are not errors.
void kill_group(pid_t pgid, int sig);
// Makes pid (0: the caller) the leader of a process group of its own; failure (the child is gone
// already, or has exec'd) is not an error: returns false.
bool lead_process_group(pid_t pid) noexcept;
void pidfd_send_signal(int pidfd, int sig);  // ESRCH is not an error

// How a child ended: exactly one of code and signal is meaningful.
struct ExitStatus {
  int code = 0;    // exit code when !signaled
  int signal = 0;  // signal number when signaled
  bool signaled = false;
};
// Reaps the child behind pidfd. nullopt when it is still running and !block.
std::optional<ExitStatus> wait_pidfd(int pidfd, bool block);
// The child ends with SIGKILL when the thread that forked it (in practice its parent) exits.
void set_parent_death_signal(int sig);
pid_t getppid() noexcept;
pid_t getpid() noexcept;
void ignore_signal(int sig) noexcept;
// Flushes C stdio (and so std::cout, which syncs with it): before a fork, so that a child does
// not inherit and repeat buffered output, and before a child's _exit.
void flush_stdio() noexcept;
// Blocks until the child pid ends, for a child that has no pidfd.
void reap(pid_t pid) noexcept;
// Handlers fork() runs in the forking thread: prepare before, parent and child after (pthread_atfork).
void at_fork(void (*prepare)(), void (*parent)(), void (*child)());

// --- time and waiting ----------------------------------------------------------------------
using Nanos = std::chrono::nanoseconds;

// Tells the CPU the caller spins, between two looks at memory another thread will write: on x86
// `pause` (saves power, yields to the core's other hyperthread, and spares the pipeline flush on
// leaving the loop), on ARM `yield` (a hint to the same end, a no-op on many cores); elsewhere
// a compiler barrier, so the loop still reloads what it looks at. The spins that call it measure
// their length on the clock, not in calls: a pause costs 10 to 150 cycles by CPU.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || (defined(__arm__) && __ARM_ARCH >= 7)  // yield came with ARMv6K
  asm volatile("yield" ::: "memory");
#else
  asm volatile("" ::: "memory");
#endif
}

// Sleeps while *word == expected, up to timeout (none: forever). Returns false on timeout.
// shared: the word lives in memory shared between processes.
bool futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::optional<Nanos> timeout,
                bool shared);
void futex_wake(const std::atomic<std::uint32_t>& word, int count, bool shared) noexcept;

// poll(2) on fds for POLLIN; returns how many are ready (0 on timeout). timeout none: forever.
struct PollFd {
  int fd = -1;
  bool ready = false;  // readable, hung up or in error
};
int poll_readable(std::span<PollFd> fds, std::optional<Nanos> timeout);

// --- memory --------------------------------------------------------------------------------
// A shared anonymous mapping: inherited by children forked later, gone with the last of them.
void* map_shared_anonymous(std::size_t size);
void* map_fd(int fd, std::size_t size);
void unmap(void* addr, std::size_t size) noexcept;
// Address space for a shared anonymous mapping of up to size bytes, committed page by page as it is
// touched (MAP_NORESERVE) and left out of core dumps; halves the size while the system refuses
// it, down to min_size. Returns the start and the size reserved.
std::pair<void*, std::size_t> reserve_shared_anonymous(std::size_t size, std::size_t min_size);
// Gives the pages of [addr, addr + size) of a shared mapping back (MADV_REMOVE); they read as
// zeros after. addr and size page-aligned.
void release_shared_pages(void* addr, std::size_t size) noexcept;
// The calling process's resident set in bytes (/proc/self/statm); 0 when it cannot be read.
std::size_t resident_bytes() noexcept;
// Whether a process with this pid exists (a zombie does).
bool process_exists(pid_t pid) noexcept;

// POSIX shared memory, always close-on-exec. name starts with '/'.
Fd shm_open(const std::string& name, int flags, unsigned mode);
void shm_unlink(const std::string& name);  // throws, with errc::no_such_file_or_directory when absent
void ftruncate(int fd, std::size_t size);
std::size_t file_size(int fd);
// An anonymous file in memory (memfd_create), close-on-exec: it lives while an fd or a mapping
// of it does, and leaves nothing in /dev/shm. name is only a label, seen in /proc/<pid>/fd.
Fd memfd_create(const std::string& name);
std::size_t page_size() noexcept;

// A file's size and modification time (stat); nullopt when it cannot be read.
struct FileStamp {
  std::uint64_t size = 0;
  std::int64_t mtime = 0;  // seconds since the epoch
};
std::optional<FileStamp> file_stamp(const std::string& path) noexcept;

// --- pipes and descriptors -----------------------------------------------------------------
std::pair<Fd, Fd> pipe();                                            // (read end, write end), both close-on-exec
std::size_t write_some(int fd, const void* data, std::size_t size);  // returns bytes written
std::size_t read_some(int fd, void* data, std::size_t size);         // 0 at end of file
void write_all(int fd, const void* data, std::size_t size);
void set_nonblocking(int fd, bool on);
// Makes target (0, 1 or 2) a copy of fd (dup2); best effort, for a child just forked.
void redirect(int fd, int target) noexcept;
// Makes C stdio's stdout line-buffered (setvbuf), as on a terminal: each line goes out whole.
void line_buffer_stdout() noexcept;
// Reads and discards whatever a non-blocking fd holds.
void drain_nonblocking(int fd) noexcept;
// Whether fd is a terminal (isatty), and a terminal's width in columns (none: not a terminal).
bool is_terminal(int fd) noexcept;
std::optional<unsigned> terminal_columns(int fd) noexcept;

// Puts note(sig) in front of the handler the program installed for sig, and makes that signal
// interrupt system calls (no SA_RESTART). Returns false, changing nothing, where the program has
// no handler (SIG_DFL or SIG_IGN): the default action stays. Idempotent.
bool chain_signal_handler(int sig, void (*note)(int)) noexcept;

// Blocks the given signals in the calling thread while alive; threads it creates inherit that.
class BlockSignals {
 public:
  explicit BlockSignals(std::initializer_list<int> signals) noexcept;
  ~BlockSignals();
  BlockSignals(const BlockSignals&) = delete;
  BlockSignals& operator=(const BlockSignals&) = delete;

 private:
  unsigned long old_[16];  // a sigset_t, without the header
};

// Descriptors only this process may hold, such as the write end of a watchdog pipe whose EOF
// tells children their parent is gone. A child forked by mproc closes them all first thing.
// Lock-free: safe to call in a child forked while another thread registers.
void register_parent_only_fd(int fd) noexcept;
void unregister_parent_only_fd(int fd) noexcept;
void close_parent_only_fds() noexcept;
// Whether the other end of a pipe is closed (poll: hang-up or end of file), without waiting.
bool hung_up(int fd) noexcept;

// Random bytes from the kernel (getrandom), for unguessable names.
void random_bytes(void* data, std::size_t size);

// CPUs: online logical CPUs; and those this process's affinity mask allows (sched_getaffinity).
unsigned online_cpus() noexcept;
unsigned affinity_cpus() noexcept;

}  // namespace mproc::detail::os
