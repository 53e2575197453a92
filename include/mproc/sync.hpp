/// @file
/// sync.hpp: synchronization shared between processes, as Python's multiprocessing has them —
///
///     Lock, RLock             mutual exclusion (robust: a holder that dies does not deadlock others)
///     Semaphore, BoundedSemaphore   counters
///     Event                   a flag processes wait for
///     Condition               wait for a change made under a lock
///     Barrier                 a fixed number of processes meet at a point, again and again
/// Each is a handle to state in the shared heap (mproc/shared_heap.hpp), made at any time: before
/// or after a Pool or Process starts. Copies of a handle share the same state, in this process,
/// in forked children, and where it is sent: each is Sendable, so it can be a task argument of a
/// process Pool, a Process argument or a Queue or Pipe item; what crosses is a handle the
/// receiver checks (a forged one throws SerializationError). The state is freed when no process
/// holds a handle any more (see mproc/detail/heap_object.hpp); nothing is named or left behind. Every wait has a
/// timeout form taking any std::chrono::duration; Condition::notify() does not wait. Waits are not interrupted by
/// signals.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "mproc/detail/heap_object.hpp"
#include "mproc/detail/wait.hpp"
#include "mproc/errors.hpp"

namespace mproc {

namespace detail {
struct MutexState;
struct SemaphoreState;
struct EventState;
struct BarrierState;
struct ConditionState;

/// What Lock and RLock share; see Lock.
class BasicLock {
 public:
  /// True once held; false when block is false and another holds it, or on timeout.
  bool acquire(bool block = true) { return acquire_ns(block ? OptNanos{} : Nanos::zero()); }
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire_ns(to_nanos(timeout));
  }
  /// Throws std::logic_error unless this thread holds the lock.
  void release();
  /// Whether any thread of any process holds it: a snapshot.
  [[nodiscard]] bool locked() const;
  /// True while held after an acquire that took the lock over from a process or thread that
  /// died holding it: whatever the lock guards may be half-updated.
  [[nodiscard]] bool previous_owner_died() const noexcept;

  void lock() { acquire(); }
  bool try_lock() { return acquire(false); }
  void unlock() { release(); }

  /// The acquire forms: nullopt waits forever, 0 does not wait.
  bool acquire_ns(OptNanos timeout);
  /// For Condition: whether the calling thread holds it; releases every level the caller holds,
  /// then takes them back.
  [[nodiscard]] bool is_mine() const noexcept;
  unsigned release_all();
  void reacquire(unsigned depth);

  /// What crosses to another process (heap_object.hpp).
  [[nodiscard]] ObjectHandle handle() const noexcept { return handle_of(s_.get()); }
  /// The lock h names: a Lock's (recursive false) or an RLock's; SerializationError otherwise.
  explicit BasicLock(const ObjectHandle& h, bool recursive);

 protected:
  explicit BasicLock(bool recursive);

 private:
  std::shared_ptr<MutexState> s_;
};
}  // namespace detail

/// A mutex shared between processes (multiprocessing.Lock). Safe to use from any thread of any
/// process that inherited it. Robust: when the holding thread or process dies, the next acquire
/// succeeds and previous_owner_died() tells the new holder the guarded state may be
/// inconsistent. Stricter than Python: only the holding thread may release it, and a blocking
/// acquire() by the thread that holds it throws std::logic_error instead of deadlocking. Its
/// acquire(false), try_lock() and acquire(timeout) return false (the last after the timeout), as
/// in Python. Members: acquire(block = true) and acquire(timeout), true once held; release();
/// locked(); previous_owner_died(); and lock(), try_lock(), unlock() for std::lock_guard.
class Lock : public detail::BasicLock {
 public:
  Lock() : BasicLock(false) {}

 private:
  explicit Lock(const detail::ObjectHandle& h) : BasicLock(h, false) {}
  /// What crosses to another process: a handle to the same state (codec.hpp).
  friend detail::ObjectHandle cross_handle(const Lock& x) noexcept { return x.handle(); }
  /// The object a received handle names; SerializationError unless it names a live one.
  friend Lock adopt_handle(std::type_identity<Lock>, const detail::ObjectHandle& h) { return Lock(h); }
};

/// A re-entrant Lock (multiprocessing.RLock): its holder may acquire it again, and must release
/// it as often. Same sharing and robustness as Lock.
class RLock : public detail::BasicLock {
 public:
  RLock() : BasicLock(true) {}

 private:
  explicit RLock(const detail::ObjectHandle& h) : BasicLock(h, true) {}
  /// What crosses to another process: a handle to the same state (codec.hpp).
  friend detail::ObjectHandle cross_handle(const RLock& x) noexcept { return x.handle(); }
  /// The object a received handle names; SerializationError unless it names a live one.
  friend RLock adopt_handle(std::type_identity<RLock>, const detail::ObjectHandle& h) { return RLock(h); }
};

/// A counter that acquire() decrements, waiting while it is 0, and release() increments
/// (multiprocessing.Semaphore). Safe between threads and processes; any thread may release.
/// Not robust: a unit held by a process that dies is not given back.
class Semaphore {
 public:
  /// A counter starting at value.
  explicit Semaphore(unsigned value = 1) : Semaphore(value, false) {}
  /// Decrements the counter, waiting while it is 0: true once done; false at once when block is
  /// false and the counter is 0, and from the timeout form when it stayed 0 for timeout.
  ///@{
  bool acquire(bool block = true) { return acquire_ns(block ? detail::OptNanos{} : detail::Nanos::zero()); }
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire_ns(detail::to_nanos(timeout));
  }
  ///@}
  /// Increments the counter and wakes one waiter; any thread of any process may call it.
  void release();
  /// A snapshot of the counter.
  [[nodiscard]] unsigned get_value() const noexcept;

  /// Lockable, for std::lock_guard and std::unique_lock: acquire(), acquire(false), release().
  ///@{
  void lock() { acquire(); }
  bool try_lock() { return acquire(false); }
  void unlock() { release(); }
  ///@}

  /// The acquire forms: nullopt waits forever, 0 does not wait.
  bool acquire_ns(detail::OptNanos timeout);

 protected:
  /// For BoundedSemaphore: bounded makes a release() above value throw.
  Semaphore(unsigned value, bool bounded);
  /// The semaphore h names, which must be bounded or not as bounded says.
  Semaphore(const detail::ObjectHandle& h, bool bounded);
  /// What crosses to another process.
  [[nodiscard]] detail::ObjectHandle handle() const noexcept { return detail::handle_of(s_.get()); }

 private:
  /// What crosses to another process: a handle to the same state (codec.hpp).
  friend detail::ObjectHandle cross_handle(const Semaphore& x) noexcept { return x.handle(); }
  /// The object a received handle names; SerializationError unless it names a live one.
  friend Semaphore adopt_handle(std::type_identity<Semaphore>, const detail::ObjectHandle& h) {
    return Semaphore(h, false);
  }

  std::shared_ptr<detail::SemaphoreState> s_;
};

/// A Semaphore that may not be released above its initial value: release() then throws
/// std::logic_error (multiprocessing.BoundedSemaphore).
class BoundedSemaphore : public Semaphore {
 public:
  /// A counter starting at value, which is also its ceiling.
  explicit BoundedSemaphore(unsigned value = 1) : Semaphore(value, true) {}

 private:
  explicit BoundedSemaphore(const detail::ObjectHandle& h) : Semaphore(h, true) {}
  /// What crosses to another process: a handle to the same state (codec.hpp).
  friend detail::ObjectHandle cross_handle(const BoundedSemaphore& x) noexcept { return x.handle(); }
  /// The object a received handle names; SerializationError unless it names a live one.
  friend BoundedSemaphore adopt_handle(std::type_identity<BoundedSemaphore>, const detail::ObjectHandle& h) {
    return BoundedSemaphore(h);
  }
};

/// A flag, initially false (multiprocessing.Event). Safe between threads and processes. Writes
/// made before set() are visible to any process after its wait() returns true. A waiter that
/// wakes to find the flag already cleared again goes on waiting.
class Event {
 public:
  /// A new flag, false.
  Event();
  /// Sets the flag and wakes every waiter.
  void set();
  /// Resets the flag to false; later waits block until the next set().
  void clear();
  /// The flag: a snapshot.
  [[nodiscard]] bool is_set() const noexcept;
  /// Returns true once the flag is set; the timeout form false when it was not set in time.
  ///@{
  bool wait() { return wait_ns({}); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_ns(detail::to_nanos(timeout));
  }
  ///@}

  /// The wait forms: nullopt waits forever.
  bool wait_ns(detail::OptNanos timeout);

 private:
  explicit Event(const detail::ObjectHandle& h);
  /// What crosses to another process: a handle to the same state (codec.hpp).
  friend detail::ObjectHandle cross_handle(const Event& x) noexcept { return detail::handle_of(x.s_.get()); }
  /// The object a received handle names; SerializationError unless it names a live one.
  friend Event adopt_handle(std::type_identity<Event>, const detail::ObjectHandle& h) { return Event(h); }

  std::shared_ptr<detail::EventState> s_;
};

/// A condition variable over a Lock or RLock (its own RLock by default), shared between
/// processes (multiprocessing.Condition); copies share it. wait() must be called holding the lock
/// (else std::logic_error). notify(n) wakes the n longest waiting (fewer if fewer wait) and
/// returns at once, without waiting for them to run. Robust: a waiter killed while it waits is
/// skipped, never counted among the n. Up to 128 waiters at a time are tracked one by one; any
/// beyond all wake together when a notify finds fewer than n of the others (Python allows
/// waking more than n).
class Condition {
 public:
  /// Over a new RLock of its own.
  Condition() : Condition(RLock()) {}
  /// Over lock, which stays shared with its other handles.
  ///@{
  explicit Condition(const Lock& lock) : Condition(static_cast<const detail::BasicLock&>(lock)) {}
  explicit Condition(const RLock& lock) : Condition(static_cast<const detail::BasicLock&>(lock)) {}
  ///@}

  /// The underlying lock's acquire(), release() and Lockable members.
  ///@{
  bool acquire(bool block = true) { return lock_.acquire(block); }
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return lock_.acquire(timeout);
  }
  void release() { lock_.release(); }
  void lock() { lock_.lock(); }
  bool try_lock() { return lock_.try_lock(); }
  void unlock() { lock_.unlock(); }
  ///@}

  /// Releases the lock (every level of an RLock), waits for a notify, takes the lock back.
  /// true when notified; the timeout form false on timeout. Wakes only on notify: re-check.
  ///@{
  bool wait() { return wait_ns({}); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_ns(detail::to_nanos(timeout));
  }
  ///@}
  /// Waits until pred() is true; returns its last value (false only on timeout).
  ///@{
  template <class Pred>
  bool wait_for(Pred pred);
  template <class Pred, class Rep, class Period>
  bool wait_for(Pred pred, std::chrono::duration<Rep, Period> timeout);
  ///@}
  /// Does not block, nor check that the caller holds the lock.
  void notify(unsigned n = 1);
  /// Wakes every current waiter; does not block.
  void notify_all();

  /// The wait forms: nullopt waits forever.
  bool wait_ns(detail::OptNanos timeout);

 private:
  /// What crosses: the lock's handle, then the condition's own.
  using Handles = std::pair<detail::ObjectHandle, detail::ObjectHandle>;
  explicit Condition(const detail::BasicLock& lock);
  explicit Condition(const Handles& h);
  /// What crosses to another process: a handle to the same state (codec.hpp).
  friend Handles cross_handle(const Condition& x) noexcept { return {x.lock_.handle(), detail::handle_of(x.s_.get())}; }
  /// The object a received handle names; SerializationError unless it names a live one.
  friend Condition adopt_handle(std::type_identity<Condition>, const Handles& h) { return Condition(h); }

  detail::BasicLock lock_;
  std::shared_ptr<detail::ConditionState> s_;
};

/// parties processes call wait() and all return together, as often as they like
/// (multiprocessing.Barrier); safe between threads and processes. wait() returns an index in
/// [0, parties), different for each of the parties of a round. abort() or a wait() that times out
/// breaks the barrier: its waiters, the one that timed out included, and every later wait() throw
/// BrokenBarrierError until reset(). reset() fails the current waiters the same way and makes the
/// barrier usable again. Barrier(0) throws std::invalid_argument.
class Barrier {
 public:
  /// A barrier for parties processes or threads; 0 throws std::invalid_argument.
  explicit Barrier(unsigned parties);
  /// Waits until parties calls have arrived, then returns this call's index in the round;
  /// BrokenBarrierError when the barrier is or becomes broken (the timeout form breaks it itself).
  ///@{
  unsigned wait() { return wait_ns({}); }
  template <class Rep, class Period>
  unsigned wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_ns(detail::to_nanos(timeout));
  }
  ///@}
  /// Breaks the barrier: current and later waits throw BrokenBarrierError until reset().
  void abort();
  /// Makes the barrier usable again; waiters of the current round throw BrokenBarrierError.
  void reset();
  /// Whether the barrier is broken: a snapshot.
  [[nodiscard]] bool broken() const;
  /// The number given to the constructor.
  [[nodiscard]] unsigned parties() const noexcept;
  /// Parties waiting in the current round: a snapshot.
  [[nodiscard]] unsigned n_waiting() const;

  /// The wait forms: nullopt waits forever.
  unsigned wait_ns(detail::OptNanos timeout);

 private:
  explicit Barrier(const detail::ObjectHandle& h);
  /// What crosses to another process: a handle to the same state (codec.hpp).
  friend detail::ObjectHandle cross_handle(const Barrier& x) noexcept { return detail::handle_of(x.s_.get()); }
  /// The object a received handle names; SerializationError unless it names a live one.
  friend Barrier adopt_handle(std::type_identity<Barrier>, const detail::ObjectHandle& h) { return Barrier(h); }

  std::shared_ptr<detail::BarrierState> s_;
};

// --- definitions --------------------------------------------------------------------------------

template <class Pred>
bool Condition::wait_for(Pred pred) {
  while (!pred()) wait();
  return true;
}

template <class Pred, class Rep, class Period>
bool Condition::wait_for(Pred pred, std::chrono::duration<Rep, Period> timeout) {
  const detail::Deadline deadline = detail::deadline_after(detail::to_nanos(timeout));
  bool ok = pred();
  while (!ok && !detail::passed(deadline)) {
    wait(*detail::time_left(deadline));
    ok = pred();
  }
  return ok;
}

}  // namespace mproc
