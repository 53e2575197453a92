/// @file
/// queue.hpp: FIFO queues shared between processes, as Python's multiprocessing has them —
///
///     Queue<T>           bounded or not; put/get with timeouts; Empty and Full
///     SimpleQueue<T>     put, get, empty: the plain unbounded queue
///     JoinableQueue<T>   a Queue whose consumers report task_done(), for join()
/// T is any Sendable type. A queue is a handle to a ring in the shared heap, made at any time:
/// before or after a Pool or Process. Forked children share it, and a queue is itself Sendable:
/// a task argument of a process Pool, a Process argument or another queue's item is a handle to
/// the same queue (checked by the receiver). Copies of a handle share the same queue; it is freed
/// when no process holds one. Nothing is named or left behind.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <stdexcept>
#include <type_traits>
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
/// or put while the ring is full, is written once into a payload block of the shared heap, and
/// the getter reads it from there. What remains bounded is memory: the items put and not yet
/// taken are resident until taken (a consumer that never reads lets them grow), an item or the
/// items in flight past the heap throw std::bad_alloc, and the blocks of items taken go back to
/// the heap (which keeps or returns their pages: mproc/shared_heap.hpp). A string or a vector of
/// raw values is encoded straight into the ring or its block (one copy); any other type is
/// encoded first into its putting thread's kept encode buffer (freed past 64 MiB). A value that
/// cannot be encoded fails that put() alone (SerializationError). get() returns a new value;
/// get_into() decodes into one the caller keeps (its memory reused).
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
      : core_(maxsize, buffer_bytes, detail::element_tag<T>()) {}

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
  /// As get(), but decodes the item into out, reusing what out owns (a vector's or string's
  /// capacity), like Python's Connection.recv_bytes_into: a consumer that takes big items into
  /// one kept buffer copies each once into memory already there, where get() builds a fresh
  /// value each time (a fresh 64 MB vector costs a page fault per page: ~200 ms on a small VM).
  /// If decoding throws, the item is taken and out holds an unspecified valid value.
  void get_into(T& out) { get_into_ns(out, {}); }
  /// Throws Empty when no item came within timeout; out is untouched then.
  template <class Rep, class Period>
  void get_into(T& out, std::chrono::duration<Rep, Period> timeout) {
    get_into_ns(out, detail::to_nanos(timeout));
  }

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
  void get_into_ns(T& out, detail::OptNanos timeout);
  ///@}

 protected:
  /// The queue h names, for a received handle.
  explicit Queue(const detail::ObjectHandle& h) : core_(h, detail::element_tag<T>()) {}
  /// A putting thread's encode buffer larger than this is freed after its put.
  static constexpr std::size_t kKeptEncodeBuffer = std::size_t{64} << 20;
  /// The shared ring, payload blocks and counts; JoinableQueue adds its unfinished count there.
  detail::QueueCore core_;
  /// Set by close(): this handle only.
  bool closed_ = false;

 private:
  /// What crosses to another process: a handle to the same state (codec.hpp).
  friend detail::ObjectHandle cross_handle(const Queue& x) noexcept { return x.core_.handle(); }
  /// The object a received handle names; SerializationError unless it names a live one.
  friend Queue adopt_handle(std::type_identity<Queue>, const detail::ObjectHandle& h) { return Queue(h); }
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
  /// As get(), decoding into out and reusing what it owns (Queue::get_into).
  void get_into(T& out) { q_.get_into(out); }
  /// A snapshot: other processes may change it before the caller acts on it.
  [[nodiscard]] bool empty() const noexcept { return q_.empty(); }
  /// This handle may no longer put or get (std::logic_error); other handles are unaffected.
  void close() noexcept { q_.close(); }

 private:
  explicit SimpleQueue(Queue<T> q) : q_(std::move(q)) {}
  /// What crosses to another process: a handle to the same state (codec.hpp).
  friend detail::ObjectHandle cross_handle(const SimpleQueue& x) noexcept { return cross_handle(x.q_); }
  /// The object a received handle names; SerializationError unless it names a live one.
  friend SimpleQueue adopt_handle(std::type_identity<SimpleQueue>, const detail::ObjectHandle& h) {
    return SimpleQueue(adopt_handle(std::type_identity<Queue<T>>{}, h));
  }

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
  JoinableQueue() = default;
  /// One item taken by get() is finished; when none is left, join() returns.
  void task_done() { this->core_.task_done(); }
  /// Blocks until every item put was marked done.
  void join() { this->core_.join({}); }
  /// True when every item was done within timeout.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return this->core_.join(detail::to_nanos(timeout));
  }

 private:
  explicit JoinableQueue(const detail::ObjectHandle& h) : Queue<T>(h) {}
  /// What crosses to another process: a handle to the same state (codec.hpp).
  friend detail::ObjectHandle cross_handle(const JoinableQueue& x) noexcept { return x.core_.handle(); }
  /// The object a received handle names; SerializationError unless it names a live one.
  friend JoinableQueue adopt_handle(std::type_identity<JoinableQueue>, const detail::ObjectHandle& h) {
    return JoinableQueue(h);
  }
};

// --- definitions --------------------------------------------------------------------------------

template <class T>
void Queue<T>::put_ns(const T& x, detail::OptNanos timeout) {
  if (closed_) throw std::logic_error("mproc::Queue::put: the queue is closed");
  bool put = false;
  if constexpr (detail::is_raw_sequence<T>::value) {
    // Its encoding is known ahead: written once, straight into the ring or its payload block.
    auto fill = [](const void* item, std::size_t from, std::span<std::byte> to) noexcept {
      detail::write_encoded_sequence(*static_cast<const T*>(item), from, to);
    };
    put = core_.put(detail::encoded_sequence_bytes(x), fill, &x, timeout);
  } else {
    thread_local detail::Writer w;
    w.clear();
    detail::encode(w, x);
    put = core_.put(w.bytes(), timeout);
    if (w.capacity() > kKeptEncodeBuffer) w = detail::Writer();
  }
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

template <class T>
void Queue<T>::get_into_ns(T& out, detail::OptNanos timeout) {
  if (closed_) throw std::logic_error("mproc::Queue::get_into: the queue is closed");
  auto consume = [](void* context, std::span<const std::byte> item) {
    detail::Reader r(item);
    detail::decode_into(r, *static_cast<T*>(context));
  };
  if (!core_.get(consume, &out, timeout)) throw Empty("mproc::Queue::get_into: the queue is empty");
}

}  // namespace mproc
