// QueueCore. The queue is a heap object (mproc/detail/heap_object.hpp), so it may be made at any
// time and sent to another process as a handle; its ring and payload blocks are heap blocks too,
// at the same address in every process. Small items are [u64 length][bytes] in the byte ring. An
// item past an eighth of the ring, or any item put while the ring has no room, goes into a
// payload block: [Block header][bytes], allocated from the heap, and what carries it is either a
// reference in the ring, [u64 kRefBit | 8][u64 block address], or, when the ring is full, a link
// in the overflow list, a FIFO of blocks whose items all come after the ring's. So put() waits
// only for maxsize, never for bytes.
//
// One robust mutex guards everything. Every block is reachable from exactly one of: a reference
// in the ring, the overflow list, or a slot naming the process that holds it while it copies a
// payload in or out outside the lock (or, for an instant, a local of a process that allocated it
// and has not yet published or held it: a process killed there loses that block to the heap, as
// the heap loses a block whose allocator dies). A process that dies holding the lock is repaired
// after by the next locker: it recounts the items, fixes the overflow list's tail, frees the
// blocks of dead processes' slots and finishes the dead putter's count from the journal. A process
// that dies outside the lock holding a slot loses that item only; its block is freed when a
// process finds no free slot, or at the next repair. Publishing is one store (the ring's head, or
// a link in the list), so each item is in the queue whole or not at all. Freed blocks go back to
// the heap, which keeps or returns their pages (mproc/shared_heap.hpp).
//
// JoinableQueue's unfinished count is puts - dones. puts is stored, not incremented, under the
// lock and journalled before each publish, so repair can redo it: a putter dying between
// publishing and counting no longer leaves join() one short.
// Waiters spin briefly on the queue being nonempty or the sequence word, then sleep on that futex
// word, which every put (for getters) or get (for putters) advances; wakes are skipped when nobody
// sleeps.
#include "mproc/detail/queue_core.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "backoff.hpp"
#include "mproc/detail/heap_object.hpp"
#include "mproc/shared_heap.hpp"
#include "os/os.hpp"
#include "os/os_ipc.hpp"

namespace mproc::detail {

void (*queue_step_hook)(QueueStep) noexcept = nullptr;

namespace {

constexpr std::uint64_t kNone = ~std::uint64_t{0};
constexpr std::uint64_t kRefBit = std::uint64_t{1} << 63;
constexpr std::uint64_t kBlockHeader = 64;  // the payload starts a cache line in
constexpr std::size_t kSlots = 128;

}  // namespace

// At the start of every payload block.
struct Block {
  std::uint64_t next;    // the overflow list's next block, or kNone
  std::uint64_t length;  // the item's bytes
};

// A block held by a process outside the lock.
struct Slot {
  std::uint64_t block;  // kNone: the slot is free
  pid_t owner;
};

// The put under way, for repair.
struct Journal {
  std::uint64_t head;   // the ring's head before it
  std::uint64_t block;  // the block it appends to the overflow list, or kNone
  std::uint32_t puts;   // puts before it
  std::uint32_t valid;  // written last
};

struct QueueState {
  pthread_mutex_t m;
  std::atomic<std::uint64_t> head{0};  // bytes ever written; written under m
  std::atomic<std::uint64_t> tail{0};  // bytes ever read; written under m
  std::uint64_t capacity = 0;
  std::uint64_t maxsize = 0;
  std::byte* ring = nullptr;                        // a heap block of capacity bytes
  std::atomic<std::uint64_t> list_head{kNone};      // the overflow list; written under m
  std::uint64_t list_tail = kNone;                  // under m
  Journal journal{};                                // under m
  Slot slots[kSlots] = {};                          // under m
  alignas(64) std::atomic<std::uint32_t> count{0};  // items queued, for qsize; written under m
  alignas(64) std::atomic<std::uint32_t> put_seq{0};
  std::atomic<std::uint32_t> getters_sleeping{0};
  alignas(64) std::atomic<std::uint32_t> get_seq{0};
  std::atomic<std::uint32_t> putters_sleeping{0};
  alignas(64) std::atomic<std::uint32_t> puts{0};  // items ever put; written under m
  alignas(64) std::atomic<std::uint32_t> dones{0};
  std::atomic<std::uint32_t> joiners_sleeping{0};

  std::byte* data() noexcept { return ring; }
  // A payload block is named by its address, the same in every process.
  static Block& block(std::uint64_t off) noexcept { return *reinterpret_cast<Block*>(off); }
  static std::byte* payload(std::uint64_t off) noexcept { return reinterpret_cast<std::byte*>(off) + kBlockHeader; }
  std::uint64_t inline_max() const noexcept { return capacity / 8; }
};

namespace {

// The item a put writes: its length and how to write any range of its bytes.
struct Message {
  std::size_t length;
  QueueCore::Filler fill;
  const void* context;
  void write(std::size_t from, std::byte* to, std::size_t n) const noexcept {
    if (n) fill(context, from, {to, n});
  }
};

void copy_in(QueueState& s, std::uint64_t at, const void* src, std::size_t n) noexcept {
  std::size_t mask = s.capacity - 1, off = at & mask, first = std::min<std::size_t>(n, s.capacity - off);
  std::memcpy(s.data() + off, src, first);
  if (n > first) std::memcpy(s.data(), static_cast<const std::byte*>(src) + first, n - first);
}

// Writes message's bytes into the ring at at, in two pieces where it wraps.
void copy_in(QueueState& s, std::uint64_t at, const Message& message) noexcept {
  std::size_t mask = s.capacity - 1, off = at & mask, first = std::min<std::size_t>(message.length, s.capacity - off);
  message.write(0, s.data() + off, first);
  message.write(first, s.data(), message.length - first);
}

void copy_out(QueueState& s, std::uint64_t at, void* dst, std::size_t n) noexcept {
  std::size_t mask = s.capacity - 1, off = at & mask, first = std::min<std::size_t>(n, s.capacity - off);
  std::memcpy(dst, s.data() + off, first);
  if (n > first) std::memcpy(static_cast<std::byte*>(dst) + first, s.data(), n - first);
}

std::uint64_t read_word(QueueState& s, std::uint64_t at) noexcept {
  std::uint64_t v = 0;
  copy_out(s, at, &v, sizeof v);
  return v;
}

// Bytes an item takes in the ring from its first word.
std::uint64_t ring_bytes(std::uint64_t word) noexcept { return sizeof word + (word & ~kRefBit); }

bool ring_room(const QueueState& s, std::uint64_t need) noexcept {
  return s.capacity - (s.head.load(std::memory_order_relaxed) - s.tail.load(std::memory_order_relaxed)) >= need;
}

bool nonempty(const QueueState& s) noexcept {
  return s.head.load(std::memory_order_acquire) != s.tail.load(std::memory_order_relaxed) ||
         s.list_head.load(std::memory_order_acquire) != kNone;
}

void bump(std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& sleeping) noexcept {
  seq.fetch_add(1, std::memory_order_seq_cst);
  if (sleeping.load(std::memory_order_seq_cst) != 0) os::futex_wake(seq, INT_MAX, true);
}

// --- payload blocks (all under m) ---------------------------------------------------------------

// Gives a block back to the heap.
void release(QueueState&, std::uint64_t off) noexcept { shared_resource()->deallocate(&QueueState::block(off), 0); }

// Frees the blocks of processes that died holding them outside the lock.
void reap_slots(QueueState& s) noexcept {
  for (Slot& slot : s.slots)
    if (slot.block != kNone && !os::process_exists(slot.owner)) {
      std::uint64_t off = slot.block;
      slot.block = kNone;
      release(s, off);
    }
}

bool take_free_slot(QueueState& s, std::uint64_t off, std::size_t& slot) noexcept {
  for (std::size_t i = 0; i < kSlots; ++i)
    if (s.slots[i].block == kNone) {
      s.slots[i] = {off, os::getpid()};
      slot = i;
      return true;
    }
  return false;
}

bool take_slot(QueueState& s, std::uint64_t off, std::size_t& slot) noexcept {
  if (take_free_slot(s, off, slot)) return true;
  reap_slots(s);
  return take_free_slot(s, off, slot);
}

// A block for an item of length bytes, to be filled before it is published. Throws
// std::bad_alloc when the heap is exhausted.
std::uint64_t allocate(QueueState&, std::uint64_t length) {
  void* p = shared_resource()->allocate(kBlockHeader + length, kBlockHeader);
  ::new (p) Block{kNone, length};
  return reinterpret_cast<std::uint64_t>(p);
}

void append(QueueState& s, std::uint64_t off) noexcept {
  if (s.list_tail == kNone)
    s.list_head.store(off, std::memory_order_release);
  else
    s.block(s.list_tail).next = off;
  s.list_tail = off;
}

// --- repair, after a process died holding m -----------------------------------------------------

// Recounts the items and fixes the overflow list's tail.
void recount(QueueState& s) noexcept {
  std::uint64_t at = s.tail.load(std::memory_order_relaxed), head = s.head.load(std::memory_order_relaxed);
  std::uint32_t items = 0;
  while (head - at >= sizeof(std::uint64_t)) {
    std::uint64_t word = read_word(s, at);
    if (ring_bytes(word) > head - at) break;  // cannot happen: items are published whole
    at += ring_bytes(word);
    ++items;
  }
  s.list_tail = kNone;
  for (std::uint64_t off = s.list_head.load(std::memory_order_relaxed); off != kNone; off = s.block(off).next) {
    s.list_tail = off;
    ++items;
  }
  s.count.store(items, std::memory_order_relaxed);
}

// A put that died after publishing is counted; one that died before, not.
void finish_journal(QueueState& s) noexcept {
  Journal& j = s.journal;
  if (!j.valid) return;
  bool published = s.head.load(std::memory_order_relaxed) != j.head;
  for (std::uint64_t off = s.list_head.load(std::memory_order_relaxed); off != kNone && j.block != kNone;
       off = s.block(off).next)
    published = published || off == j.block;
  s.puts.store(published ? j.puts + 1 : j.puts, std::memory_order_release);
  j.valid = 0;
}

void repair(QueueState& s) noexcept {
  finish_journal(s);
  recount(s);
  reap_slots(s);
  bump(s.put_seq, s.getters_sleeping);
  bump(s.get_seq, s.putters_sleeping);
}

// Holds the queue's lock, repairing the state first when the last holder died.
class Guard {
 public:
  explicit Guard(QueueState& s) : s_(s) {
    if (os::robust_mutex_lock(&s_.m, std::nullopt) == os::LockResult::owner_died) {
      try {
        repair(s_);
      } catch (...) {
        os::robust_mutex_unlock(&s_.m);
        throw;
      }
    }
  }
  ~Guard() { os::robust_mutex_unlock(&s_.m); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

 private:
  QueueState& s_;
};

// A payload block this process holds in a slot, outside the lock; freed unless handed on.
class HeldBlock {
 public:
  explicit HeldBlock(QueueState& s) : s_(s) {}
  ~HeldBlock() {
    if (off_ == kNone) return;
    Guard g(s_);
    s_.slots[slot_].block = kNone;
    release(s_, off_);
  }
  HeldBlock(const HeldBlock&) = delete;
  HeldBlock& operator=(const HeldBlock&) = delete;
  // Under m.
  bool hold(std::uint64_t off) noexcept {
    if (!take_slot(s_, off, slot_)) return false;
    off_ = off;
    return true;
  }
  [[nodiscard]] std::uint64_t block() const noexcept { return off_; }
  // Under m, once the block is published.
  void hand_on() noexcept {
    s_.slots[slot_].block = kNone;
    off_ = kNone;
  }

 private:
  QueueState& s_;
  std::uint64_t off_ = kNone;
  std::size_t slot_ = 0;
};

// Waits until ready() or the deadline: spins, then sleeps on seq while it stays unchanged.
// ready() is re-checked by the caller under the lock.
template <class Ready>
bool wait_until(std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& sleeping, std::uint32_t seen,
                const Deadline& deadline, Ready ready) {
  for (Backoff backoff(waits::kQueue, deadline);;) {
    if (ready() || seq.load(std::memory_order_acquire) != seen) return true;
    if (!backoff.pause()) break;
  }
  if (passed(deadline)) return false;
  sleeping.fetch_add(1, std::memory_order_seq_cst);
  if (!ready()) os::futex_wait(seq, seen, time_left(deadline), true);
  sleeping.fetch_sub(1, std::memory_order_relaxed);
  return !passed(deadline) || ready();
}

void copy_payload_in(QueueState& s, std::uint64_t off, const Message& message) noexcept {
  std::size_t half = message.length / 2;
  message.write(0, s.payload(off), half);
  if (queue_step_hook) queue_step_hook(QueueStep::payload_copying);
  message.write(half, s.payload(off) + half, message.length - half);
}

// Under m, with room for one more item: puts message in the ring inline, or as a reference to
// held's block, or in a block of its own on the overflow list, and counts it.
void publish(QueueState& s, const Message& message, HeldBlock& held) {
  std::uint64_t length = message.length, head = s.head.load(std::memory_order_relaxed);
  bool in_order = s.list_head.load(std::memory_order_relaxed) == kNone;
  std::uint64_t off = held.block();
  if (off == kNone && !(in_order && length <= s.inline_max() && ring_room(s, sizeof length + length))) {
    off = allocate(s, length);  // the ring is full: into the overflow list
    message.write(0, s.payload(off), length);
  }
  bool by_ring = off == kNone || (in_order && ring_room(s, 2 * sizeof length));
  std::uint32_t puts = s.puts.load(std::memory_order_relaxed);
  // Each store ordered after the ones before it (release), so that repair finds them done.
  std::atomic_ref<std::uint32_t> valid(s.journal.valid);
  s.journal = Journal{head, by_ring ? kNone : off, puts, 0};
  valid.store(1, std::memory_order_release);
  if (off == kNone) {
    copy_in(s, head, &length, sizeof length);
    copy_in(s, head + sizeof length, message);
    s.head.store(head + sizeof length + length, std::memory_order_release);
  } else if (by_ring) {
    std::uint64_t ref[2] = {kRefBit | sizeof off, off};
    copy_in(s, head, ref, sizeof ref);
    s.head.store(head + sizeof ref, std::memory_order_release);
  } else {
    append(s, off);
  }
  if (held.block() != kNone) held.hand_on();
  if (queue_step_hook) queue_step_hook(QueueStep::put_published);
  s.puts.store(puts + 1, std::memory_order_release);
  s.count.fetch_add(1, std::memory_order_release);
  valid.store(0, std::memory_order_release);
}

// Under m, from a nonempty queue: takes the oldest item, into small when it is small (or no slot
// is free), else into held.
void take(QueueState& s, Writer& small, HeldBlock& held) {
  std::uint64_t tail = s.tail.load(std::memory_order_relaxed);
  small.clear();
  std::uint64_t off = kNone;
  if (tail != s.head.load(std::memory_order_relaxed)) {
    std::uint64_t word = read_word(s, tail);
    if (word & kRefBit) {
      off = read_word(s, tail + sizeof word);
      if (!held.hold(off)) {
        Block& b = s.block(off);
        std::memcpy(small.grow(b.length), s.payload(off), b.length);
      }
    } else {
      copy_out(s, tail + sizeof word, small.grow(word), word);
    }
    s.tail.store(tail + ring_bytes(word), std::memory_order_relaxed);
  } else {
    off = s.list_head.load(std::memory_order_relaxed);
    Block& b = s.block(off);
    if (b.length <= s.inline_max() || !held.hold(off)) std::memcpy(small.grow(b.length), s.payload(off), b.length);
    s.list_head.store(b.next, std::memory_order_relaxed);
    if (b.next == kNone) s.list_tail = kNone;
  }
  if (queue_step_hook) queue_step_hook(QueueStep::get_consumed);
  s.count.fetch_sub(1, std::memory_order_relaxed);
  if (off != kNone && held.block() == kNone) release(s, off);
}

}  // namespace

namespace {

// Where the last reference to the queue goes: every block it still refers to goes back to the
// heap, then its ring.
void destroy_queue(void* state) noexcept {
  auto& s = *static_cast<QueueState*>(state);
  std::uint64_t at = s.tail.load(std::memory_order_relaxed), head = s.head.load(std::memory_order_relaxed);
  while (head - at >= sizeof(std::uint64_t)) {
    std::uint64_t word = read_word(s, at);
    if (ring_bytes(word) > head - at) break;
    if (word & kRefBit) release(s, read_word(s, at + sizeof word));
    at += ring_bytes(word);
  }
  for (std::uint64_t off = s.list_head.load(std::memory_order_relaxed); off != kNone;) {
    std::uint64_t next = s.block(off).next;
    release(s, off);
    off = next;
  }
  for (Slot& slot : s.slots)
    if (slot.block != kNone) release(s, slot.block);
  shared_resource()->deallocate(s.ring, s.capacity);
  s.~QueueState();
}

}  // namespace

QueueCore::QueueCore(std::size_t maxsize, std::size_t buffer_bytes, std::uint64_t tag) {
  std::size_t capacity = std::bit_ceil(std::max<std::size_t>(buffer_bytes, 64));
  auto* ring = static_cast<std::byte*>(shared_resource()->allocate(capacity, 64));
  std::shared_ptr<void> object;
  try {
    object = make_heap_object(ObjectKind::queue, tag, sizeof(QueueState), &destroy_queue);
  } catch (...) {
    shared_resource()->deallocate(ring, capacity);
    throw;
  }
  auto* s = ::new (object.get()) QueueState;
  s->capacity = capacity;
  s->maxsize = maxsize;
  s->ring = ring;
  for (Slot& slot : s->slots) slot.block = kNone;
  os::robust_mutex_init(&s->m, false);
  s_ = std::shared_ptr<QueueState>(std::move(object), s);
}

QueueCore::QueueCore(const ObjectHandle& h, std::uint64_t tag)
    : s_(std::static_pointer_cast<QueueState>(
          attach_heap_object(h, ObjectKind::queue, tag, &destroy_queue, "mproc::Queue"))) {}

ObjectHandle QueueCore::handle() const noexcept { return handle_of(s_.get()); }

bool QueueCore::put(std::span<const std::byte> message, OptNanos timeout) {
  auto copy = [](const void* context, std::size_t from, std::span<std::byte> to) noexcept {
    std::memcpy(to.data(), static_cast<const std::byte*>(context) + from, to.size());
  };
  return put(message.size(), copy, message.data(), timeout);
}

bool QueueCore::put(std::size_t length, Filler fill, const void* context, OptNanos timeout) {
  QueueState& s = *s_;
  const Message message{length, fill, context};
  const Deadline deadline = deadline_after(timeout);
  HeldBlock held(s);
  if (message.length > s.inline_max()) {
    if (timeout == Nanos::zero() && full()) return false;  // not worth a copy; publish() decides the rest
    std::uint64_t off = allocate(s, message.length);
    bool outside = false;
    {
      Guard g(s);
      outside = held.hold(off);
    }
    if (outside)
      copy_payload_in(s, off, message);
    else
      release(s, off);  // no slot free: publish() copies it in under the lock
  }
  for (;;) {
    std::uint32_t seen;
    {
      Guard g(s);
      if (s.maxsize == 0 || s.count.load(std::memory_order_relaxed) < s.maxsize) {
        publish(s, message, held);
        break;
      }
      seen = s.get_seq.load(std::memory_order_relaxed);
    }
    if (passed(deadline)) return false;
    wait_until(s.get_seq, s.putters_sleeping, seen, deadline, [] { return false; });
  }
  bump(s.put_seq, s.getters_sleeping);
  return true;
}

bool QueueCore::get(Consumer consume, void* context, OptNanos timeout) {
  QueueState& s = *s_;
  thread_local Writer small;
  const Deadline deadline = deadline_after(timeout);
  HeldBlock held(s);
  for (;;) {
    std::uint32_t seen;
    if (nonempty(s)) {
      Guard g(s);
      if (nonempty(s)) {
        take(s, small, held);
        break;
      }
    }
    seen = s.put_seq.load(std::memory_order_acquire);
    if (nonempty(s)) continue;
    if (passed(deadline)) return false;
    wait_until(s.put_seq, s.getters_sleeping, seen, deadline, [&s] { return nonempty(s); });
  }
  bump(s.get_seq, s.putters_sleeping);
  if (held.block() == kNone) {
    consume(context, small.bytes());
  } else {
    if (queue_step_hook) queue_step_hook(QueueStep::payload_copying);
    consume(context, {s.payload(held.block()), s.block(held.block()).length});
  }
  return true;
}

std::size_t QueueCore::qsize() const noexcept { return s_->count.load(std::memory_order_relaxed); }

bool QueueCore::full() const noexcept { return s_->maxsize != 0 && qsize() >= s_->maxsize; }

std::size_t QueueCore::maxsize() const noexcept { return s_->maxsize; }

void QueueCore::task_done() {
  QueueState& s = *s_;
  std::uint32_t done = s.dones.load(std::memory_order_relaxed);
  do {
    if (done == s.puts.load(std::memory_order_acquire))
      throw std::logic_error("mproc::JoinableQueue::task_done: called more times than items were put");
  } while (!s.dones.compare_exchange_weak(done, done + 1, std::memory_order_acq_rel));
  if (done + 1 == s.puts.load(std::memory_order_acquire) && s.joiners_sleeping.load(std::memory_order_seq_cst) != 0)
    os::futex_wake(s.dones, INT_MAX, true);
}

bool QueueCore::join(OptNanos timeout) {
  QueueState& s = *s_;
  const Deadline deadline = deadline_after(timeout);
  for (;;) {
    std::uint32_t done = s.dones.load(std::memory_order_acquire);
    if (done == s.puts.load(std::memory_order_acquire)) return true;
    if (passed(deadline)) return false;
    s.joiners_sleeping.fetch_add(1, std::memory_order_seq_cst);
    os::futex_wait(s.dones, done, time_left(deadline), true);
    s.joiners_sleeping.fetch_sub(1, std::memory_order_relaxed);
  }
}

}  // namespace mproc::detail
