// copy_big (buffer.hpp): a big copy made by two threads, the caller's and the process's copy
// helper, each copying half. One thread copies about 11 GB/s here, two about twice that; and on
// a loaded machine, where each thread gets half a CPU, the halves run on both CPUs at once.
//
// The helper is one thread per process, made at the first big copy, asleep on a futex word
// between copies, holding no lock: a fork at any moment leaves the child nothing to undo. A
// forked child makes its own (threads do not cross a fork): the helper names the process it
// serves. A caller that finds it busy (another thread's copy), not yet made, or impossible to
// make (no threads left) copies alone.
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <thread>

#include "mproc/detail/buffer.hpp"
#include "os/os.hpp"

namespace mproc::detail {
namespace {

constexpr std::uint32_t kIdle = 0, kPosted = 1, kDone = 2;

struct CopyHelper {
  explicit CopyHelper(pid_t serves) : pid(serves) {}
  const pid_t pid;                 // the process whose thread it is
  std::atomic<bool> ready{false};  // its thread runs
  std::atomic<bool> busy{false};   // a caller holds it
  std::atomic<std::uint32_t> word{kIdle};
  // The half it copies; written by the holder before it posts.
  std::byte* to = nullptr;
  const std::byte* from = nullptr;
  std::size_t bytes = 0;
};

// Never freed: a helper serves its process until the process ends, and a forked child's copy of
// its parent's is left as it is.
std::atomic<CopyHelper*> g_helper{nullptr};
std::atomic<std::uint64_t> g_shared{0};  // big_copies_shared()

[[noreturn]] void serve(CopyHelper* h) {
  for (;;) {
    while (h->word.load(std::memory_order_acquire) != kPosted) os::futex_wait(h->word, kIdle, std::nullopt, false);
    std::memcpy(h->to, h->from, h->bytes);
    h->word.store(kDone, std::memory_order_release);
    os::futex_wake(h->word, 1, false);
  }
}

// This process's helper, ready, or nullptr: none yet (being made) or none can be.
CopyHelper* helper() noexcept {
  const pid_t pid = os::getpid();
  CopyHelper* h = g_helper.load(std::memory_order_acquire);
  if (h && h->pid == pid) return h->ready.load(std::memory_order_acquire) ? h : nullptr;
  // None yet in this process, or its parent's (a fork's copy): made once, by whoever swaps it in.
  auto* fresh = new (std::nothrow) CopyHelper(pid);
  if (!fresh) return nullptr;
  if (!g_helper.compare_exchange_strong(h, fresh, std::memory_order_acq_rel)) {
    delete fresh;
    return nullptr;  // another thread makes it; this copy is made alone
  }
  try {
    os::BlockSignals block({SIGINT, SIGTERM});  // as the pool's threads: the program's threads take them
    std::thread(serve, fresh).detach();
  } catch (...) {
    return nullptr;  // no thread to be had: never ready, every copy made alone
  }
  fresh->ready.store(true, std::memory_order_release);
  return fresh;
}

}  // namespace

void copy_big(void* to, const void* from, std::size_t bytes) noexcept {
  CopyHelper* h = bytes >= kBigCopyBytes ? helper() : nullptr;
  bool idle = false;
  if (!h || !h->busy.compare_exchange_strong(idle, true, std::memory_order_acquire)) {
    if (bytes) std::memcpy(to, from, bytes);  // none: the pointers may be null
    return;
  }
  const std::size_t first = bytes / 2 & ~std::size_t{4095};  // each half whole pages, where they are aligned
  h->to = static_cast<std::byte*>(to) + first;
  h->from = static_cast<const std::byte*>(from) + first;
  h->bytes = bytes - first;
  h->word.store(kPosted, std::memory_order_release);
  os::futex_wake(h->word, 1, false);
  std::memcpy(to, from, first);
  while (h->word.load(std::memory_order_acquire) != kDone) os::futex_wait(h->word, kPosted, std::nullopt, false);
  h->word.store(kIdle, std::memory_order_relaxed);
  h->busy.store(false, std::memory_order_release);
  g_shared.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t big_copies_shared() noexcept { return g_shared.load(std::memory_order_relaxed); }

}  // namespace mproc::detail
