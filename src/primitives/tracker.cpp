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
// calls. Its table of names lives in memory it maps itself, and grows without bound.
#include "primitives/tracker.hpp"

#include <signal.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "os/os.hpp"
#include "os/os_ipc.hpp"

namespace mproc::detail {
namespace {

// op byte + '/' + a name of up to NAME_MAX bytes (shm_open takes no longer) + NUL; <= PIPE_BUF,
// so each record is written atomically.
constexpr std::size_t kRecord = NAME_MAX + 3;
static_assert(kRecord <= PIPE_BUF);

std::mutex g_mu;
int g_write_fd = -1;  // guarded by g_mu; inherited by forked children

// The names the tracker holds: a hash set with linear probing, in private anonymous memory
// (mmap: no malloc after the fork), doubled before it is half full. A slot's first byte is 0
// when free, kErased when its name was taken out; names start with '/'.
class NameTable {
 public:
  // False when memory ran out: the name is then not tracked (unlink() still removes it).
  bool insert(const char* name) noexcept {
    if (2 * (used_ + 1) > capacity_ && !rehash()) return false;
    std::size_t vacant = kNone;
    if (probe(name, &vacant) != kNone) return true;
    if (slot(vacant)[0] == '\0') ++used_;
    std::memcpy(slot(vacant), name, std::strlen(name) + 1);
    ++live_;
    return true;
  }

  void erase(const char* name) noexcept {
    std::size_t i = capacity_ ? probe(name, nullptr) : kNone;
    if (i == kNone) return;
    slot(i)[0] = kErased;
    --live_;
  }

  template <class F>
  void for_each(F f) const noexcept {
    for (std::size_t i = 0; i < capacity_; ++i)
      if (live(slot(i))) f(slot(i));
  }

 private:
  static constexpr char kErased = 1;
  static constexpr std::size_t kNone = SIZE_MAX;
  static constexpr std::size_t kMinSlots = 1024;

  static bool live(const char* s) noexcept { return s[0] != '\0' && s[0] != kErased; }
  [[nodiscard]] char* slot(std::size_t i) const noexcept { return slots_ + i * kRecord; }

  static std::size_t hash(const char* s) noexcept {
    std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
    for (; *s; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 1099511628211ULL;
    return static_cast<std::size_t>(h);
  }

  // The slot holding name, or kNone; *vacant (when asked) gets the first slot name could go in.
  std::size_t probe(const char* name, std::size_t* vacant) const noexcept {
    for (std::size_t i = hash(name) & (capacity_ - 1);; i = (i + 1) & (capacity_ - 1)) {
      char* s = slot(i);
      if (vacant && *vacant == kNone && !live(s)) *vacant = i;
      if (s[0] == '\0') return kNone;
      if (live(s) && std::strcmp(s, name) == 0) return i;
    }
  }

  // Moves the live names to a table at most a quarter full; drops the erased ones.
  bool rehash() noexcept {
    std::size_t capacity = kMinSlots;
    while (capacity < 4 * (live_ + 1)) capacity *= 2;
    auto* slots = static_cast<char*>(os::map_private_raw(capacity * kRecord));
    if (!slots) return false;
    NameTable next;
    next.slots_ = slots;
    next.capacity_ = capacity;
    for_each([&](const char* name) { next.insert(name); });
    if (slots_) os::unmap(slots_, capacity_ * kRecord);
    slots_ = slots;
    capacity_ = capacity;
    used_ = live_ = next.live_;
    return true;
  }

  char* slots_ = nullptr;
  std::size_t capacity_ = 0;  // a power of two
  std::size_t used_ = 0;      // slots not free: live or erased
  std::size_t live_ = 0;
};

[[noreturn]] void run_tracker(int read_fd) noexcept {
  if (read_fd != 3) {
    os::dup2_raw(read_fd, 3);
  }
  os::close_fds_from(4);
  os::redirect_std_to_devnull();
  os::ignore_signal(SIGINT);
  os::ignore_signal(SIGTERM);
  os::ignore_signal(SIGHUP);
  NameTable table;
  char rec[kRecord];
  for (;;) {
    std::size_t got = 0;
    while (got < kRecord) {
      long n = os::read_raw(3, rec + got, kRecord - got);
      if (n <= 0) goto done;
      got += static_cast<std::size_t>(n);
    }
    rec[kRecord - 1] = '\0';
    if (rec[0] == '+')
      table.insert(rec + 1);
    else if (rec[0] == '-')
      table.erase(rec + 1);
  }
done:
  table.for_each([](const char* name) { os::shm_unlink_quiet(name); });
  os::exit_now(0);
}

// Starts the tracker if this process has none. Under g_mu.
void start() {
  if (g_write_fd >= 0) return;
  auto [r, w] = os::pipe();
  pid_t child = os::fork_raw();
  if (child == -1) return;  // no tracker: blocks then rely on unlink() alone
  if (child == 0) {
    os::setsid_raw();
    pid_t grandchild = os::fork_raw();
    if (grandchild == 0) run_tracker(r.get());
    os::exit_now(0);
  }
  os::reap(child);
  g_write_fd = w.release();
}

void send(char op, const std::string& name) noexcept {
  if (name.size() + 2 > kRecord) return;  // shm_open refused it already: nothing to track
  std::lock_guard hold(g_mu);
  // No tracker (its fork failed, or this process only attached): nothing to tell.
  if (g_write_fd < 0) return;
  char rec[kRecord] = {};
  rec[0] = op;
  std::memcpy(rec + 1, name.data(), name.size());
  try {
    os::write_all(g_write_fd, rec, kRecord);
  } catch (...) {
    // The tracker is gone (it cannot be while we hold the pipe, short of being killed):
    // cleanup falls back to unlink().
  }
}

}  // namespace

void tracker_start() {
  std::lock_guard hold(g_mu);
  start();
}
void tracker_register(const std::string& name) noexcept { send('+', name); }
void tracker_unregister(const std::string& name) noexcept { send('-', name); }

}  // namespace mproc::detail
