// QueueCore: items are [u64 length][bytes] in a byte ring that follows the state in one shared
// anonymous mapping. A robust mutex guards the state. The ring is head and tail alone: an item is
// published (head advanced) only after it is copied in, and consumed (tail advanced) only after
// it is copied out, each in one store, so whatever instant a process dies at, the ring holds
// whole items and getters, which test head != tail, never read a stale length. The item count
// (for qsize, full and maxsize) is a second store that a process dying after the first leaves
// one off: the next locker, told the owner died, counts the ring again and wakes every sleeper
// (the dead may not have). A putter dying between publishing and counting an unfinished task
// leaves a JoinableQueue's unfinished count one short.
// Waiters spin briefly on head != tail or the sequence word, then sleep on that futex word,
// which every put (for getters) or get (for putters) advances; wakes are skipped when nobody
// sleeps.
#include "mproc/detail/queue_core.hpp"

#include <emmintrin.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <climits>
#include <cstring>
#include <stdexcept>

#include "os/os.hpp"
#include "os/os_ipc.hpp"

namespace mproc::detail {

void (*queue_step_hook)(QueueStep) noexcept = nullptr;

struct QueueState {
  pthread_mutex_t m;
  std::atomic<std::uint64_t> head{0};  // bytes ever written; written under m
  std::atomic<std::uint64_t> tail{0};  // bytes ever read; written under m
  std::uint64_t capacity = 0;
  std::uint64_t maxsize = 0;
  alignas(64) std::atomic<std::uint32_t> count{0};  // items in the ring, for qsize; written under m
  alignas(64) std::atomic<std::uint32_t> put_seq{0};
  std::atomic<std::uint32_t> getters_sleeping{0};
  alignas(64) std::atomic<std::uint32_t> get_seq{0};
  std::atomic<std::uint32_t> putters_sleeping{0};
  alignas(64) std::atomic<std::uint32_t> unfinished{0};
  std::atomic<std::uint32_t> joiners_sleeping{0};

  std::byte* data() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
};

namespace {

constexpr std::int64_t kSpinNs = 30'000;

void copy_in(QueueState& s, std::uint64_t at, const void* src, std::size_t n) noexcept {
  std::size_t mask = s.capacity - 1, off = at & mask, first = std::min<std::size_t>(n, s.capacity - off);
  std::memcpy(s.data() + off, src, first);
  if (n > first) std::memcpy(s.data(), static_cast<const std::byte*>(src) + first, n - first);
}

void copy_out(QueueState& s, std::uint64_t at, void* dst, std::size_t n) noexcept {
  std::size_t mask = s.capacity - 1, off = at & mask, first = std::min<std::size_t>(n, s.capacity - off);
  std::memcpy(dst, s.data() + off, first);
  if (n > first) std::memcpy(static_cast<std::byte*>(dst) + first, s.data(), n - first);
}

bool nonempty(const QueueState& s) noexcept {
  return s.head.load(std::memory_order_acquire) != s.tail.load(std::memory_order_relaxed);
}

void bump(std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& sleeping) noexcept {
  seq.fetch_add(1, std::memory_order_seq_cst);
  if (sleeping.load(std::memory_order_seq_cst) != 0) os::futex_wake(seq, INT_MAX, true);
}

// Under m, after a process died holding it: the count again from the ring, and every sleeper
// woken, since the dead may have died before its wake.
void repair(QueueState& s) noexcept {
  std::uint64_t at = s.tail.load(std::memory_order_relaxed), head = s.head.load(std::memory_order_relaxed);
  std::uint32_t items = 0;
  while (head - at >= sizeof(std::uint64_t)) {
    std::uint64_t length = 0;
    copy_out(s, at, &length, sizeof length);
    if (length > head - at - sizeof length) break;  // cannot happen: items are published whole
    at += sizeof length + length;
    ++items;
  }
  s.count.store(items, std::memory_order_relaxed);
  bump(s.put_seq, s.getters_sleeping);
  bump(s.get_seq, s.putters_sleeping);
}

// Holds the queue's lock, repairing the count first when the last holder died.
class Guard {
 public:
  explicit Guard(QueueState& s) : s_(s) {
    if (os::robust_mutex_lock(&s_.m, std::nullopt) == os::LockResult::owner_died) repair(s_);
  }
  ~Guard() { os::robust_mutex_unlock(&s_.m); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

 private:
  QueueState& s_;
};

// Waits until ready() or the deadline: spins, then sleeps on seq while it stays unchanged.
// ready() is re-checked by the caller under the lock.
template <class Ready>
bool wait_until(std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& sleeping, std::uint32_t seen,
                std::optional<std::int64_t> end, Ready ready) {
  std::int64_t spin_end = os::monotonic_ns() + kSpinNs;
  for (int i = 0;; ++i) {
    if (ready() || seq.load(std::memory_order_acquire) != seen) return true;
    if ((i & 63) == 63) {
      std::int64_t now = os::monotonic_ns();
      if (end && now >= *end) return false;
      if (now >= spin_end) break;
    }
    _mm_pause();
  }
  sleeping.fetch_add(1, std::memory_order_seq_cst);
  std::optional<os::Nanos> left;
  if (end) left = os::Nanos(std::max<std::int64_t>(0, *end - os::monotonic_ns()));
  if (!ready()) os::futex_wait(seq, seen, left, true);
  sleeping.fetch_sub(1, std::memory_order_relaxed);
  return !end || os::monotonic_ns() < *end || ready();
}

}  // namespace

QueueCore::QueueCore(std::size_t maxsize, std::size_t buffer_bytes) {
  std::size_t capacity = std::bit_ceil(std::max<std::size_t>(buffer_bytes, 64));
  std::shared_ptr<void> region = map_shared_region(sizeof(QueueState) + capacity);
  auto* s = ::new (region.get()) QueueState;
  s->capacity = capacity;
  s->maxsize = maxsize;
  os::robust_mutex_init(&s->m, false);
  s_ = std::shared_ptr<QueueState>(std::move(region), s);
}

bool QueueCore::put(std::span<const std::byte> message, OptNanos timeout) {
  QueueState& s = *s_;
  std::uint64_t length = message.size();
  std::uint64_t need = sizeof length + length;
  if (need > s.capacity)
    throw std::length_error("mproc::Queue::put: an item of " + std::to_string(length) +
                            " bytes does not fit the queue's buffer of " + std::to_string(s.capacity) +
                            " bytes; make the queue with a larger buffer_bytes");
  std::optional<std::int64_t> end;
  if (timeout) end = os::monotonic_ns() + *timeout;
  for (;;) {
    std::uint32_t seen;
    {
      Guard g(s);
      std::uint64_t head = s.head.load(std::memory_order_relaxed);
      bool room = (s.maxsize == 0 || s.count.load(std::memory_order_relaxed) < s.maxsize) &&
                  s.capacity - (head - s.tail.load(std::memory_order_relaxed)) >= need;
      if (room) {
        copy_in(s, head, &length, sizeof length);
        copy_in(s, head + sizeof length, message.data(), message.size());
        s.head.store(head + need, std::memory_order_release);
        if (queue_step_hook) queue_step_hook(QueueStep::put_published);
        s.unfinished.fetch_add(1, std::memory_order_relaxed);
        s.count.fetch_add(1, std::memory_order_release);
        break;
      }
      seen = s.get_seq.load(std::memory_order_relaxed);
    }
    if (end && os::monotonic_ns() >= *end) return false;
    wait_until(s.get_seq, s.putters_sleeping, seen, end, [] { return false; });
  }
  bump(s.put_seq, s.getters_sleeping);
  return true;
}

bool QueueCore::get(Writer& out, OptNanos timeout) {
  QueueState& s = *s_;
  std::optional<std::int64_t> end;
  if (timeout) end = os::monotonic_ns() + *timeout;
  for (;;) {
    std::uint32_t seen;
    if (nonempty(s)) {
      Guard g(s);
      if (nonempty(s)) {
        std::uint64_t tail = s.tail.load(std::memory_order_relaxed);
        std::uint64_t length = 0;
        copy_out(s, tail, &length, sizeof length);
        out.clear();
        copy_out(s, tail + sizeof length, out.grow(static_cast<std::size_t>(length)), static_cast<std::size_t>(length));
        s.tail.store(tail + sizeof length + length, std::memory_order_relaxed);
        if (queue_step_hook) queue_step_hook(QueueStep::get_consumed);
        s.count.fetch_sub(1, std::memory_order_relaxed);
        break;
      }
    }
    seen = s.put_seq.load(std::memory_order_acquire);
    if (nonempty(s)) continue;
    if (end && os::monotonic_ns() >= *end) return false;
    wait_until(s.put_seq, s.getters_sleeping, seen, end, [&s] { return nonempty(s); });
  }
  bump(s.get_seq, s.putters_sleeping);
  return true;
}

std::size_t QueueCore::qsize() const noexcept { return s_->count.load(std::memory_order_relaxed); }

bool QueueCore::full() const noexcept { return s_->maxsize != 0 && qsize() >= s_->maxsize; }

std::size_t QueueCore::maxsize() const noexcept { return s_->maxsize; }

void QueueCore::task_done() {
  QueueState& s = *s_;
  std::uint32_t v = s.unfinished.load(std::memory_order_relaxed);
  do {
    if (v == 0) throw std::logic_error("mproc::JoinableQueue::task_done: called more times than items were put");
  } while (!s.unfinished.compare_exchange_weak(v, v - 1, std::memory_order_acq_rel));
  if (v == 1 && s.joiners_sleeping.load(std::memory_order_seq_cst) != 0) os::futex_wake(s.unfinished, INT_MAX, true);
}

bool QueueCore::join(OptNanos timeout) {
  QueueState& s = *s_;
  std::optional<std::int64_t> end;
  if (timeout) end = os::monotonic_ns() + *timeout;
  for (;;) {
    std::uint32_t v = s.unfinished.load(std::memory_order_acquire);
    if (v == 0) return true;
    std::optional<os::Nanos> left;
    if (end) {
      std::int64_t l = *end - os::monotonic_ns();
      if (l <= 0) return false;
      left = os::Nanos(l);
    }
    s.joiners_sleeping.fetch_add(1, std::memory_order_seq_cst);
    os::futex_wait(s.unfinished, v, left, true);
    s.joiners_sleeping.fetch_sub(1, std::memory_order_relaxed);
  }
}

}  // namespace mproc::detail
