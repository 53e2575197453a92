// The state of Lock, RLock, Semaphore, Event, Condition and Barrier, each a heap object
// (mproc/detail/heap_object.hpp): made at any time, sent as a checked handle.
// Locks are glibc's robust process-shared mutexes: the kernel walks a dying thread's robust list
// and marks every mutex it held, so the next locker gets EOWNERDEAD instead of a deadlock. The
// counters are bare futex words (shared, not PRIVATE), woken only when someone sleeps.
#include "mproc/sync.hpp"

#include <atomic>
#include <climits>
#include <stdexcept>
#include <thread>

#include "mproc/errors.hpp"
#include "os/os.hpp"
#include "os/os_ipc.hpp"

namespace mproc {
namespace detail {

struct MutexState {
  pthread_mutex_t m;
  bool recursive = false;
  bool owner_died = false;                     // written by the holder: this hold began with a takeover
  std::atomic<std::uint32_t> died_pending{0};  // a takeover seen by locked(), for the next holder
};

struct SemaphoreState {
  std::atomic<std::uint32_t> value{0};
  std::atomic<std::uint32_t> waiters{0};
  std::uint32_t max = 0;
  bool bounded = false;
};

struct EventState {
  std::atomic<std::uint32_t> flag{0};
  std::atomic<std::uint32_t> waiters{0};
};

struct BarrierState {
  pthread_mutex_t m;
  std::uint32_t parties = 0;
  std::uint32_t count = 0;                   // guarded by m
  std::atomic<std::uint32_t> generation{0};  // advanced (under m) when a round ends; the futex
  std::atomic<std::uint32_t> waiters{0};
  bool broken = false;           // guarded by m
  bool has_broken_gen = false;   // guarded by m
  std::uint32_t broken_gen = 0;  // guarded by m: the round that ended broken
};

constexpr std::size_t kConditionSlots = 128;

// One waiter of a Condition. The waiting thread holds alive for as long as it waits: when it
// dies, the kernel marks that robust mutex, so notify() can tell a dead waiter from a slow one.
struct ConditionSlot {
  pthread_mutex_t alive;
  bool used = false;                       // guarded by ConditionState::m
  std::uint64_t ticket = 0;                // guarded by m: order of arrival
  std::atomic<std::uint32_t> notified{0};  // set under m by notify(); the waiter's futex
};

struct ConditionState {
  pthread_mutex_t m;
  std::uint64_t next_ticket = 0;               // guarded by m
  std::uint32_t overflow_waiters = 0;          // guarded by m: waiters that found no free slot
  std::atomic<std::uint32_t> overflow_gen{0};  // advanced under m by a notify they must see
  ConditionSlot slots[kConditionSlots];
};

namespace {

// Locks an internal mutex; a dead previous holder is ignored, since every update under these
// mutexes is a few stores that leave the state usable.
class Guard {
 public:
  explicit Guard(pthread_mutex_t* m) : m_(m) { os::robust_mutex_lock(m_, std::nullopt); }
  ~Guard() { os::robust_mutex_unlock(m_); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

 private:
  pthread_mutex_t* m_;
};

}  // namespace

// --- Lock, RLock -------------------------------------------------------------------------------

BasicLock::BasicLock(bool recursive)
    : s_(make_shared_state<MutexState>(recursive ? ObjectKind::rlock : ObjectKind::lock)) {
  os::robust_mutex_init(&s_->m, recursive);
  s_->recursive = recursive;
}

BasicLock::BasicLock(const ObjectHandle& h, bool recursive)
    : s_(attach_shared_state<MutexState>(h, recursive ? ObjectKind::rlock : ObjectKind::lock,
                                         recursive ? "mproc::RLock" : "mproc::Lock")) {}

namespace {
// A Lock the caller already holds (only its holder may release it): a bounded wait can only
// time out, as in Python; waiting forever is a certain deadlock, refused instead.
bool held_by_caller(OptNanos timeout) {
  if (!timeout) throw std::logic_error("mproc::Lock::acquire: this thread already holds the lock");
  std::this_thread::sleep_for(*timeout);
  return false;
}
}  // namespace

bool BasicLock::acquire_ns(OptNanos timeout) {
  auto r = os::robust_mutex_lock(&s_->m, timeout);
  switch (r) {
    case os::LockResult::busy:
    case os::LockResult::timed_out:
      return false;
    case os::LockResult::deadlock:
      return held_by_caller(timeout);
    case os::LockResult::owner_died:
      s_->owner_died = true;
      s_->died_pending.store(0, std::memory_order_relaxed);
      return true;
    case os::LockResult::acquired:
      if (!s_->recursive || os::robust_mutex_depth(&s_->m) == 1)
        s_->owner_died = s_->died_pending.exchange(0, std::memory_order_relaxed) != 0;
      return true;
  }
  return false;
}

void BasicLock::release() {
  bool last = !s_->recursive || os::robust_mutex_depth(&s_->m) <= 1;
  bool died = s_->owner_died;
  if (last) s_->owner_died = false;
  if (!os::robust_mutex_unlock(&s_->m)) {
    s_->owner_died = died;
    throw std::logic_error(s_->recursive ? "mproc::RLock::release: the lock is not held by this thread"
                                         : "mproc::Lock::release: the lock is not held by this thread");
  }
}

bool BasicLock::locked() const {
  if (os::robust_mutex_owner(&s_->m) == os::gettid()) return true;
  switch (os::robust_mutex_lock(&s_->m, os::Nanos(0))) {
    case os::LockResult::acquired:
      os::robust_mutex_unlock(&s_->m);
      return false;
    case os::LockResult::owner_died:
      s_->died_pending.store(1, std::memory_order_relaxed);
      os::robust_mutex_unlock(&s_->m);
      return false;
    default:
      return true;
  }
}

bool BasicLock::previous_owner_died() const noexcept { return s_->owner_died; }

bool BasicLock::is_mine() const noexcept { return os::robust_mutex_owner(&s_->m) == os::gettid(); }

unsigned BasicLock::release_all() {
  if (!is_mine()) throw std::logic_error("mproc::Condition: the lock is not held by this thread");
  unsigned depth = s_->recursive ? os::robust_mutex_depth(&s_->m) : 1;
  for (unsigned i = 0; i < depth; ++i) release();
  return depth;
}

void BasicLock::reacquire(unsigned depth) {
  for (unsigned i = 0; i < depth; ++i) acquire();
}

}  // namespace detail

// --- Semaphore ---------------------------------------------------------------------------------

Semaphore::Semaphore(unsigned value, bool bounded)
    : s_(detail::make_shared_state<detail::SemaphoreState>(detail::ObjectKind::semaphore)) {
  s_->value.store(value);
  s_->max = value;
  s_->bounded = bounded;
}

Semaphore::Semaphore(const detail::ObjectHandle& h, bool bounded)
    : s_(detail::attach_shared_state<detail::SemaphoreState>(h, detail::ObjectKind::semaphore, "mproc::Semaphore")) {
  if (bounded && !s_->bounded)
    throw SerializationError(
        "mproc: a BoundedSemaphore's handle was refused: it names a Semaphore that is not bounded");
}

bool Semaphore::acquire_ns(detail::OptNanos timeout) {
  const detail::Deadline deadline = detail::deadline_after(timeout);
  for (;;) {
    std::uint32_t v = s_->value.load(std::memory_order_relaxed);
    while (v > 0)
      if (s_->value.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    if (detail::passed(deadline)) return false;
    s_->waiters.fetch_add(1, std::memory_order_seq_cst);
    detail::os::futex_wait(s_->value, 0, detail::time_left(deadline), /*shared=*/true);
    s_->waiters.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Semaphore::release() {
  if (s_->bounded) {
    std::uint32_t v = s_->value.load(std::memory_order_relaxed);
    do {
      if (v >= s_->max) throw std::logic_error("mproc::BoundedSemaphore::release: released too many times");
    } while (!s_->value.compare_exchange_weak(v, v + 1, std::memory_order_release, std::memory_order_relaxed));
  } else {
    s_->value.fetch_add(1, std::memory_order_release);
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (s_->waiters.load(std::memory_order_relaxed) != 0) detail::os::futex_wake(s_->value, 1, true);
}

unsigned Semaphore::get_value() const noexcept { return s_->value.load(std::memory_order_relaxed); }

// --- Event -------------------------------------------------------------------------------------

Event::Event() : s_(detail::make_shared_state<detail::EventState>(detail::ObjectKind::event)) {}

Event::Event(const detail::ObjectHandle& h)
    : s_(detail::attach_shared_state<detail::EventState>(h, detail::ObjectKind::event, "mproc::Event")) {}

void Event::set() {
  s_->flag.store(1, std::memory_order_seq_cst);
  if (s_->waiters.load(std::memory_order_seq_cst) != 0) detail::os::futex_wake(s_->flag, INT_MAX, true);
}

void Event::clear() { s_->flag.store(0, std::memory_order_seq_cst); }

bool Event::is_set() const noexcept { return s_->flag.load(std::memory_order_acquire) != 0; }

bool Event::wait_ns(detail::OptNanos timeout) {
  const detail::Deadline deadline = detail::deadline_after(timeout);
  for (;;) {
    if (is_set()) return true;
    if (detail::passed(deadline)) return false;
    s_->waiters.fetch_add(1, std::memory_order_seq_cst);
    detail::os::futex_wait(s_->flag, 0, detail::time_left(deadline), true);
    s_->waiters.fetch_sub(1, std::memory_order_relaxed);
  }
}

// --- Condition: a slot per waiter, each its own futex word ---------------------------------------
// Nothing waits for a waiter's acknowledgement, so a dead waiter cannot block notify(); and a
// slot whose alive mutex comes back owner-died is a dead waiter's, freed instead of notified.

namespace {

// Holds the Condition's internal mutex. A notifier that died holding it may have set a slot's
// word without waking its waiter: every notified slot is woken again.
class ConditionGuard {
 public:
  explicit ConditionGuard(detail::ConditionState& s) : s_(s) {
    if (detail::os::robust_mutex_lock(&s_.m, std::nullopt) != detail::os::LockResult::owner_died) return;
    for (auto& slot : s_.slots)
      if (slot.used && slot.notified.load(std::memory_order_relaxed) != 0)
        detail::os::futex_wake(slot.notified, 1, true);
    detail::os::futex_wake(s_.overflow_gen, INT_MAX, true);
  }
  ~ConditionGuard() { detail::os::robust_mutex_unlock(&s_.m); }
  ConditionGuard(const ConditionGuard&) = delete;
  ConditionGuard& operator=(const ConditionGuard&) = delete;

 private:
  detail::ConditionState& s_;
};

// Under m: takes alive of a free slot or of a dead waiter's, for the calling thread.
bool take_slot(detail::ConditionSlot& slot) {
  switch (detail::os::robust_mutex_lock(&slot.alive, detail::os::Nanos(0))) {
    case detail::os::LockResult::acquired:
    case detail::os::LockResult::owner_died:
      slot.used = true;
      return true;
    default:
      return false;
  }
}

// Under m, by the slot's waiter, or by anyone who took alive over from a dead one.
void free_slot(detail::ConditionSlot& slot) {
  slot.used = false;
  slot.notified.store(0, std::memory_order_relaxed);
  detail::os::robust_mutex_unlock(&slot.alive);
}

// Sleeps while word == seen, up to the deadline; false on timeout.
bool sleep_while(const std::atomic<std::uint32_t>& word, std::uint32_t seen, const detail::Deadline& deadline) {
  while (word.load(std::memory_order_acquire) == seen) {
    if (detail::passed(deadline)) return false;
    detail::os::futex_wait(word, seen, detail::time_left(deadline), true);
  }
  return true;
}

}  // namespace

Condition::Condition(const Handles& h)
    : lock_(h.first, h.first.kind == static_cast<std::uint32_t>(detail::ObjectKind::rlock)),
      s_(detail::attach_shared_state<detail::ConditionState>(h.second, detail::ObjectKind::condition,
                                                             "mproc::Condition")) {}

Condition::Condition(const detail::BasicLock& lock)
    : lock_(lock), s_(detail::make_shared_state<detail::ConditionState>(detail::ObjectKind::condition)) {
  detail::os::robust_mutex_init(&s_->m, false);
  for (auto& slot : s_->slots) detail::os::robust_mutex_init(&slot.alive, false);
}

bool Condition::wait_ns(detail::OptNanos timeout) {
  // Checked before this waiter is counted in, so that a failed wait leaves nothing behind.
  if (!lock_.is_mine()) throw std::logic_error("mproc::Condition::wait: the lock is not held by this thread");
  const detail::Deadline deadline = detail::deadline_after(timeout);
  detail::ConditionState& s = *s_;
  detail::ConditionSlot* slot = nullptr;
  std::uint32_t gen = 0;
  {
    ConditionGuard g(s);
    for (auto& candidate : s.slots)
      if (take_slot(candidate)) {
        slot = &candidate;
        break;
      }
    if (slot) {
      slot->notified.store(0, std::memory_order_relaxed);
      slot->ticket = s.next_ticket++;
    } else {
      ++s.overflow_waiters;
      gen = s.overflow_gen.load(std::memory_order_relaxed);
    }
  }
  // Registered before the lock is given up: a notify made under the lock after this sees us.
  unsigned depth = lock_.release_all();
  auto leave = [&] {
    ConditionGuard g(s);
    bool notified;
    if (slot) {
      notified = slot->notified.load(std::memory_order_relaxed) != 0;
      free_slot(*slot);
    } else {
      notified = s.overflow_gen.load(std::memory_order_relaxed) != gen;
      --s.overflow_waiters;
    }
    return notified;
  };
  bool notified;
  try {
    if (slot)
      sleep_while(slot->notified, 0, deadline);
    else
      sleep_while(s.overflow_gen, gen, deadline);
    // A notify that came as the timeout passed counts: it was spent on this waiter.
    notified = leave();
  } catch (...) {
    lock_.reacquire(depth);
    throw;
  }
  lock_.reacquire(depth);
  return notified;
}

void Condition::notify(unsigned n) {
  detail::ConditionState& s = *s_;
  ConditionGuard g(s);
  unsigned woken = 0;
  while (woken < n) {
    detail::ConditionSlot* oldest = nullptr;
    for (auto& slot : s.slots)
      if (slot.used && slot.notified.load(std::memory_order_relaxed) == 0 && (!oldest || slot.ticket < oldest->ticket))
        oldest = &slot;
    if (!oldest) break;
    if (take_slot(*oldest)) {  // its waiter died: alive was ours to take
      free_slot(*oldest);
      continue;
    }
    oldest->notified.store(1, std::memory_order_release);
    detail::os::futex_wake(oldest->notified, 1, true);
    ++woken;
  }
  if (woken < n && s.overflow_waiters != 0) {
    s.overflow_gen.fetch_add(1, std::memory_order_release);
    detail::os::futex_wake(s.overflow_gen, INT_MAX, true);
  }
}

void Condition::notify_all() { notify(UINT_MAX); }

// --- Barrier -----------------------------------------------------------------------------------

namespace {
void end_round(detail::BarrierState& s, bool broken) {
  if (broken) {
    s.has_broken_gen = true;
    s.broken_gen = s.generation.load(std::memory_order_relaxed);
  }
  s.count = 0;
  s.generation.fetch_add(1, std::memory_order_seq_cst);
  if (s.waiters.load(std::memory_order_seq_cst) != 0) detail::os::futex_wake(s.generation, INT_MAX, true);
}
}  // namespace

Barrier::Barrier(unsigned parties) {
  if (parties == 0) throw std::invalid_argument("mproc::Barrier: parties must be at least 1");
  s_ = detail::make_shared_state<detail::BarrierState>(detail::ObjectKind::barrier);
  detail::os::robust_mutex_init(&s_->m, false);
  s_->parties = parties;
}

Barrier::Barrier(const detail::ObjectHandle& h)
    : s_(detail::attach_shared_state<detail::BarrierState>(h, detail::ObjectKind::barrier, "mproc::Barrier")) {}

unsigned Barrier::wait_ns(detail::OptNanos timeout) {
  const detail::Deadline deadline = detail::deadline_after(timeout);
  std::uint32_t gen;
  unsigned index;
  {
    detail::Guard g(&s_->m);
    if (s_->broken) throw BrokenBarrierError("mproc::Barrier::wait: the barrier is broken");
    gen = s_->generation.load(std::memory_order_relaxed);
    index = s_->count++;
    if (s_->count == s_->parties) {
      end_round(*s_, false);
      return index;
    }
  }
  while (s_->generation.load(std::memory_order_acquire) == gen) {
    if (detail::passed(deadline)) {
      detail::Guard g(&s_->m);
      if (s_->generation.load(std::memory_order_relaxed) == gen) {
        s_->broken = true;
        end_round(*s_, true);
      }
      break;
    }
    s_->waiters.fetch_add(1, std::memory_order_seq_cst);
    detail::os::futex_wait(s_->generation, gen, detail::time_left(deadline), true);
    s_->waiters.fetch_sub(1, std::memory_order_relaxed);
  }
  detail::Guard g(&s_->m);
  if (s_->has_broken_gen && s_->broken_gen == gen)
    throw BrokenBarrierError("mproc::Barrier::wait: the barrier was broken while waiting");
  return index;
}

void Barrier::abort() {
  detail::Guard g(&s_->m);
  s_->broken = true;
  end_round(*s_, true);
}

void Barrier::reset() {
  detail::Guard g(&s_->m);
  if (s_->count > 0) end_round(*s_, true);
  s_->broken = false;
}

bool Barrier::broken() const {
  detail::Guard g(&s_->m);
  return s_->broken;
}

unsigned Barrier::parties() const noexcept { return s_->parties; }

unsigned Barrier::n_waiting() const {
  detail::Guard g(&s_->m);
  return s_->count;
}

}  // namespace mproc
