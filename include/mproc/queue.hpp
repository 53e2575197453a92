/// @file
/// queue.hpp: FIFO queues shared between processes, as Python's multiprocessing has them —
///
///     Queue<T>           bounded or not; put/get with timeouts; Empty and Full
///     SimpleQueue<T>     put, get, empty: the plain unbounded queue
///     JoinableQueue<T>   a Queue whose consumers report task_done(), for join()
/// T is any Sendable type. A queue is a handle to a ring in an anonymous shared mapping: create
/// it before the fork (a queue made later is unknown to running workers); the parent and every
/// child share it, and copies of a handle share the same queue. Nothing is named or left behind.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <stdexcept>
#include <utility>

#include "mproc/codec.hpp"
#include "mproc/detail/queue_core.hpp"
#include "mproc/errors.hpp"

namespace mproc {

/// A multi-producer, multi-consumer FIFO queue between processes (multiprocessing.Queue). Safe
/// from any thread of any process that shares it. Items put by one thread of one process come
/// out in the order put. Items of any size cross. maxsize 0 means no item limit, and put() then
/// never blocks; with a maxsize, put() waits only for the item count. put() copies the item in
/// before returning (no feeder thread, unlike Python). Small items travel through a shared ring
/// (buffer_bytes, 1 MiB by default, rounded up to a power of two); an item past an eighth of it,
/// or put while the ring is full, is written once into a payload block of the queue's shared
/// reservation (64 GiB of address space where the system allows it, at least 64 MiB; pages are
/// committed as they are written), and the getter reads it from there. What remains bounded is
/// memory: the items put and not yet taken are resident until taken (a consumer that never reads
/// lets them grow), an item or the items in flight past the reservation throw std::length_error,
/// and after they are taken the queue keeps at most QueueCore::kPayloadCache (64 MiB) of freed
/// blocks resident for reuse, plus the ring; each putting thread keeps its encode buffer (freed
/// past 64 MiB). A value that cannot be encoded fails that put() alone (SerializationError).
/// The lock is robust: a process that dies inside put() or get() does not leave the queue locked,
/// a half-copied item is never published, and the queue stays consistent (qsize() may be one off
/// until the next put or get); a process that dies while copying a big item in or out loses that
/// item alone.
template <class T>
class Queue {
  static_assert(Sendable<T>, "mproc::Queue<T>: T must be Sendable (see codec.hpp)");

 public:
  /// A new empty queue of at most maxsize items (0: no limit) over a ring of buffer_bytes.
  /// Throws std::system_error when the shared memory cannot be had.
  explicit Queue(std::size_t maxsize = 0, std::size_t buffer_bytes = std::size_t{1} << 20)
      : core_(maxsize, buffer_bytes) {}

  /// Blocks while the queue is full; no timeout, not interrupted by signals.
  void put(const T& x) { put_ns(x, {}); }
  /// Throws Full when no room came within timeout.
  template <class Rep, class Period>
  void put(const T& x, std::chrono::duration<Rep, Period> timeout) {
    put_ns(x, detail::to_nanos(timeout));
  }
  /// Throws Full at once when there is no room.
  void put_nowait(const T& x) { put_ns(x, detail::Nanos::zero()); }
  /// Blocks while the queue is empty; no timeout, not interrupted by signals.
  T get() { return get_ns({}); }
  /// Throws Empty when no item came within timeout.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    return get_ns(detail::to_nanos(timeout));
  }
  /// Throws Empty at once when there is no item.
  T get_nowait() { return get_ns(detail::Nanos::zero()); }

  /// A snapshot: other processes may change it before the caller acts on it.
  [[nodiscard]] std::size_t qsize() const noexcept { return core_.qsize(); }
  /// qsize() == 0: a snapshot too.
  [[nodiscard]] bool empty() const noexcept { return core_.qsize() == 0; }
  /// Whether maxsize items are in the queue (never with maxsize 0): a snapshot too.
  [[nodiscard]] bool full() const noexcept { return core_.full(); }
  /// This handle object may no longer put or get (they throw std::logic_error); other handles,
  /// copies included, and other processes are unaffected. Items already put stay.
  void close() noexcept { closed_ = true; }

  /// The put and get forms: nullopt waits forever, 0 does not wait.
  ///@{
  void put_ns(const T& x, detail::OptNanos timeout);
  T get_ns(detail::OptNanos timeout);
  ///@}

 protected:
  /// A putting thread's encode buffer larger than this is freed after its put.
  static constexpr std::size_t kKeptEncodeBuffer = std::size_t{64} << 20;
  /// The shared ring, payload blocks and counts; JoinableQueue adds its unfinished count there.
  detail::QueueCore core_;
  /// Set by close(): this handle only.
  bool closed_ = false;
};

/// An unbounded FIFO queue between processes (multiprocessing.SimpleQueue): put, get, empty.
/// Same sharing and guarantees as Queue.
template <class T>
class SimpleQueue {
 public:
  SimpleQueue() = default;
  /// Copies x into the queue; never blocks for room.
  void put(const T& x) { q_.put(x); }
  /// Blocks while the queue is empty; no timeout, not interrupted by signals.
  T get() { return q_.get(); }
  /// A snapshot: other processes may change it before the caller acts on it.
  [[nodiscard]] bool empty() const noexcept { return q_.empty(); }
  /// This handle may no longer put or get (std::logic_error); other handles are unaffected.
  void close() noexcept { q_.close(); }

 private:
  Queue<T> q_;
};

/// A Queue that counts unfinished items (multiprocessing.JoinableQueue): each put() adds one,
/// each task_done() removes one; join() waits until none is left. task_done() more often than
/// put() throws std::logic_error. The count is shared like the items; a consumer that dies
/// before its task_done() leaves join() waiting: use the timeout form where that can happen.
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  using Queue<T>::Queue;
  /// One item taken by get() is finished; when none is left, join() returns.
  void task_done() { this->core_.task_done(); }
  /// Blocks until every item put was marked done.
  void join() { this->core_.join({}); }
  /// True when every item was done within timeout.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return this->core_.join(detail::to_nanos(timeout));
  }
};

// --- definitions --------------------------------------------------------------------------------

template <class T>
void Queue<T>::put_ns(const T& x, detail::OptNanos timeout) {
  if (closed_) throw std::logic_error("mproc::Queue::put: the queue is closed");
  thread_local detail::Writer w;
  w.clear();
  detail::encode(w, x);
  bool put = core_.put(w.bytes(), timeout);
  if (w.capacity() > kKeptEncodeBuffer) w = detail::Writer();
  if (!put) throw Full("mproc::Queue::put: the queue is full");
}

template <class T>
T Queue<T>::get_ns(detail::OptNanos timeout) {
  if (closed_) throw std::logic_error("mproc::Queue::get: the queue is closed");
  std::optional<T> out;
  auto consume = [](void* context, std::span<const std::byte> item) {
    detail::Reader r(item);
    static_cast<std::optional<T>*>(context)->emplace(detail::decode<T>(r));
  };
  if (!core_.get(consume, &out, timeout)) throw Empty("mproc::Queue::get: the queue is empty");
  return std::move(*out);
}

}  // namespace mproc
