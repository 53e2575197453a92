// copy_big (buffer.hpp): a big copy made by two threads, the caller's and the process's copy
// helper, sharing it a chunk at a time. Whichever thread runs takes the next chunk, so a copy is
// never slower than the caller copying alone by more than the chunk the helper has in hand: on a
// loaded machine the helper may wait milliseconds to run, or be preempted halfway, and the
// caller does not wait for it. Copies are bound by memory: on a quiet machine here two threads
// copy as fast as one or up to 1.5 times as fast (it varies from hour to hour); on a loaded one,
// where each thread gets part of a CPU, the two run on both CPUs at once.
//
// The helper is one thread per process, made at the first big copy, asleep on a futex word
// between copies, holding no lock: a fork at any moment leaves the child nothing to undo. A
// forked child makes its own (threads do not cross a fork): the helper names the process it
// serves. A caller that finds it busy (another thread's copy), not yet made, or impossible to
// make (no threads left) copies alone.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <thread>

#include "mproc/detail/buffer.hpp"
#include "os/os.hpp"

namespace mproc::detail {
namespace {

// The helper's word: no copy posted; a copy posted and not taken up; the helper copying chunks of
// it; the helper done with it. The caller takes back a copy the helper has not taken up (kPosted
// to kIdle), and otherwise waits for kDone, then sets kIdle.
constexpr std::uint32_t kIdle = 0, kPosted = 1, kTaken = 2, kDone = 3;
// What a thread takes at a time: small enough that the caller seldom waits for the helper's last
// one, big enough that claiming it costs nothing (chunk sizes from 256 KB to 8 MB copy at the
// same speed here).
constexpr std::size_t kChunkBytes = std::size_t{1} << 20;

struct CopyHelper {
  explicit CopyHelper(pid_t serves) : pid(serves) {}
  const pid_t pid;                 // the process whose thread it is
  std::atomic<bool> ready{false};  // its thread runs
  std::atomic<bool> busy{false};   // a caller holds it
  std::atomic<std::uint32_t> word{kIdle};
  // The copy posted; written by the holder before it posts.
  std::byte* to = nullptr;
  const std::byte* from = nullptr;
  std::size_t bytes = 0;
  std::atomic<std::size_t> next{0};  // the first byte no thread has taken
  bool helped = false;               // the helper copied a chunk of it; written before kDone
};

// Never freed: a helper serves its process until the process ends, and a forked child's copy of
// its parent's is left as it is.
std::atomic<CopyHelper*> g_helper{nullptr};
std::atomic<std::uint64_t> g_helped{0};  // big_copies_helped()

// Copies chunks of the posted copy until none is left to take; true if it copied any.
bool copy_chunks(CopyHelper& h) noexcept {
  bool copied = false;
  for (std::size_t at; (at = h.next.fetch_add(kChunkBytes, std::memory_order_relaxed)) < h.bytes; copied = true)
    std::memcpy(h.to + at, h.from + at, std::min(kChunkBytes, h.bytes - at));
  return copied;
}

[[noreturn]] void serve(CopyHelper* h) {
  for (;;) {
    std::uint32_t seen = h->word.load(std::memory_order_acquire);
    if (seen != kPosted) {
      // Idle, or its last copy not yet seen done by the caller: asleep until the word changes.
      os::futex_wait(h->word, seen, std::nullopt, false);
      continue;
    }
    if (!h->word.compare_exchange_strong(seen, kTaken, std::memory_order_acquire)) continue;  // taken back
    h->helped = copy_chunks(*h);
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
  h->to = static_cast<std::byte*>(to);
  h->from = static_cast<const std::byte*>(from);
  h->bytes = bytes;
  h->next.store(0, std::memory_order_relaxed);
  h->word.store(kPosted, std::memory_order_release);
  os::futex_wake(h->word, 1, false);
  copy_chunks(*h);
  std::uint32_t seen = kPosted;
  if (!h->word.compare_exchange_strong(seen, kIdle, std::memory_order_acquire)) {
    // The helper took part: its chunks are copied once it says kDone.
    while ((seen = h->word.load(std::memory_order_acquire)) != kDone)
      os::futex_wait(h->word, seen, std::nullopt, false);
    h->word.store(kIdle, std::memory_order_relaxed);
    if (h->helped) g_helped.fetch_add(1, std::memory_order_relaxed);
  }
  h->busy.store(false, std::memory_order_release);
}

std::uint64_t big_copies_helped() noexcept { return g_helped.load(std::memory_order_relaxed); }

}  // namespace mproc::detail
