// The cleanup owner of named shared memory, in the spirit of Python's resource_tracker but
// without its fault (unlinking a block other processes still use).
//
// The first create() in a program starts the tracker: a grandchild (double fork, so it is no
// one's child to reap, in its own session so terminal signals miss it) that holds only the read
// end of a pipe. The creating process keeps the write end, close-on-exec; every process forked
// from it afterwards (Process, Pool workers, their children) inherits it. create() and unlink()
// write fixed-size records ("+name", "-name") of at most PIPE_BUF bytes, so writers from many
// processes never interleave. The tracker sees end-of-file only when every process holding the
// write end has ended — normally or not — and then unlinks whatever is still registered. So a
// block lives as long as any process of the program might use it, and no longer.
//
// The tracker is forked from a process that may run threads: it only makes async-signal-safe
// calls, into a table allocated before the fork.
#include "primitives/tracker.hpp"

#include <signal.h>

#include <cstring>
#include <mutex>

#include "os/os.hpp"
#include "os/os_ipc.hpp"

namespace mproc::detail {
namespace {

constexpr std::size_t kRecord = 256;  // op byte + name + NUL; <= PIPE_BUF: atomic writes
constexpr std::size_t kSlots = 4096;

char g_table[kSlots][kRecord];  // the tracker's registered names; static: no malloc after fork

std::mutex g_mu;
int g_write_fd = -1;  // guarded by g_mu; inherited by forked children

[[noreturn]] void run_tracker(int read_fd) noexcept {
  if (read_fd != 3) {
    os::dup2_raw(read_fd, 3);
  }
  os::close_fds_from(4);
  os::redirect_std_to_devnull();
  os::ignore_signal(SIGINT);
  os::ignore_signal(SIGTERM);
  os::ignore_signal(SIGHUP);
  char rec[kRecord];
  for (;;) {
    std::size_t got = 0;
    while (got < kRecord) {
      long n = os::read_raw(3, rec + got, kRecord - got);
      if (n <= 0) goto done;
      got += static_cast<std::size_t>(n);
    }
    rec[kRecord - 1] = '\0';
    if (rec[0] == '+') {
      for (auto& slot : g_table)
        if (slot[0] == '\0') {
          std::memcpy(slot, rec + 1, kRecord - 1);
          break;
        }
    } else if (rec[0] == '-') {
      for (auto& slot : g_table)
        if (slot[0] != '\0' && std::strcmp(slot, rec + 1) == 0) {
          slot[0] = '\0';
          break;
        }
    }
  }
done:
  for (auto& slot : g_table)
    if (slot[0] != '\0') os::shm_unlink_quiet(slot);
  os::exit_now(0);
}

// Starts the tracker if this process has none; returns the write end.
int tracker_fd() {
  if (g_write_fd >= 0) return g_write_fd;
  auto [r, w] = os::pipe();
  pid_t child = os::fork_raw();
  if (child == -1) return -1;  // no tracker: blocks then rely on unlink() alone
  if (child == 0) {
    os::setsid_raw();
    pid_t grandchild = os::fork_raw();
    if (grandchild == 0) run_tracker(r.get());
    os::exit_now(0);
  }
  os::reap(child);
  g_write_fd = w.release();
  return g_write_fd;
}

void send(char op, const std::string& name) {
  if (name.size() + 2 > kRecord) return;  // too long to track; unlink() still works
  std::lock_guard hold(g_mu);
  // A process that only attached has nothing registered to take back: no tracker for that.
  if (op == '-' && g_write_fd < 0) return;
  int fd = tracker_fd();
  if (fd < 0) return;
  char rec[kRecord] = {};
  rec[0] = op;
  std::memcpy(rec + 1, name.data(), name.size());
  try {
    os::write_all(fd, rec, kRecord);
  } catch (...) {
    // The tracker is gone (it cannot be while we hold the pipe, short of being killed):
    // cleanup falls back to unlink().
  }
}

}  // namespace

void tracker_register(const std::string& name) { send('+', name); }
void tracker_unregister(const std::string& name) { send('-', name); }

}  // namespace mproc::detail
