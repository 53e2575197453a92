// os_ipc.hpp: more os wrappers, for the primitives (Process, Queue, Pipe, locks, shared memory):
// process-shared robust mutexes, stream socket pairs, pidfd polling, the monotonic clock and the
// few async-signal-safe calls the shared-memory tracker makes after fork. Same rules as os.hpp.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>

#include "os/os.hpp"

namespace mproc::detail::os {

// --- robust, process-shared mutexes (pthread, PTHREAD_PROCESS_SHARED | PTHREAD_MUTEX_ROBUST) ---
// The kernel's robust-futex list marks a mutex whose owner died; the next locker is told so.
enum class LockResult { acquired, owner_died, timed_out, busy, deadlock };
void robust_mutex_init(pthread_mutex_t* m, bool recursive);
// timeout none: forever; Nanos(0) behaves as a try-lock. A mutex whose owner died is made
// consistent again before owner_died is returned: the caller holds it.
LockResult robust_mutex_lock(pthread_mutex_t* m, std::optional<Nanos> timeout);
// Returns false when the caller does not hold the mutex (EPERM).
bool robust_mutex_unlock(pthread_mutex_t* m);
// glibc's own bookkeeping: the holder's thread id (0: free) and a recursive mutex's depth.
pid_t robust_mutex_owner(const pthread_mutex_t* m) noexcept;
unsigned robust_mutex_depth(const pthread_mutex_t* m) noexcept;

// --- sockets ---------------------------------------------------------------------------------
std::pair<Fd, Fd> stream_socketpair();  // AF_UNIX, SOCK_STREAM, both ends close-on-exec
void shutdown(int fd, bool read, bool write) noexcept;
// A second descriptor for the same open file (F_DUPFD_CLOEXEC).
Fd dup(int fd);
// send(MSG_NOSIGNAL) until all is written: a closed peer is EPIPE, never SIGPIPE.
void send_all(int fd, const void* data, std::size_t size);
// The same for [a][b], in one sendmsg when the socket takes it all.
void send_all2(int fd, const void* a, std::size_t a_size, const void* b, std::size_t b_size);
// Reads exactly size bytes; false when the peer closed before the first byte; throws
// EOFError-worthy std::system_error(ECONNRESET) when it closed in the middle.
bool read_exact(int fd, void* data, std::size_t size);

pid_t gettid() noexcept;
int pidfd_poll(int pidfd, std::optional<Nanos> timeout);  // 1 when the process has ended
// poll(2) for POLLIN once: unlike poll_readable, EINTR returns 0 (the caller tracks its deadline).
int poll_readable_once(std::span<PollFd> fds, std::optional<Nanos> timeout);

// --- async-signal-safe, for a child forked from a process that may run threads ---------------
// Closes every fd >= first but keep (-1: none): close_range, or where it fails (ENOSYS before
// Linux 5.9, EPERM under a seccomp profile) each one /proc/self/fd lists, else every number up
// to RLIMIT_NOFILE. For a child that needs nothing else of its parent's, and must not keep a
// pipe or socket of the parent's open for as long as it lives.
void close_fds_from(int first, int keep = -1) noexcept;
void redirect_std_to_devnull() noexcept;
long read_raw(int fd, void* data, std::size_t size) noexcept;  // -1 on error (EINTR retried)
void shm_unlink_quiet(const char* name) noexcept;
int dup2_raw(int from, int to) noexcept;
pid_t fork_raw() noexcept;  // -1 on failure
int setsid_raw() noexcept;
// Private anonymous memory, zeroed; nullptr on failure. Free with unmap().
void* map_private_raw(std::size_t size) noexcept;
void write_stderr(const char* text, std::size_t size) noexcept;  // one write(2); errors ignored

// --- signal handlers (async-signal-safe: for use in handlers too) ----------------------------
// Installs handler (with SA_SIGINFO | flags, nothing blocked) for sig; the action it replaces
// goes to *previous.
void install_signal_handler(int sig, void (*handler)(int, siginfo_t*, void*), int flags,
                            struct sigaction* previous) noexcept;
void restore_signal_action(int sig, const struct sigaction& action) noexcept;
// Calls the handler action names, if it names one (neither SIG_DFL nor SIG_IGN).
void call_handler(const struct sigaction& action, int sig, siginfo_t* info, void* context) noexcept;
// Resets sig to its default action and raises it: a fatal signal ends the process as it would
// have without handlers.
void raise_default(int sig) noexcept;

}  // namespace mproc::detail::os
