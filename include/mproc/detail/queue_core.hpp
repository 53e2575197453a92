// queue_core.hpp: QueueCore, the untyped queue behind Queue, SimpleQueue and JoinableQueue: a
// heap object (heap_object.hpp) with a byte ring for small items and payload blocks in the shared
// heap for items the ring cannot take, all guarded by one robust process-shared mutex, with futex
// words getters and putters sleep on after a short spin.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "mproc/detail/buffer.hpp"
#include "mproc/detail/heap_object.hpp"
#include "mproc/detail/wait.hpp"

namespace mproc::detail {

struct QueueState;

// Tests only: when set, called at the points where a put or a get is half done, so that a test
// can kill the process there. put_published, get_consumed: holding the queue's lock, the item
// just put in or taken out (before the counts are updated); payload_copying: not holding it,
// halfway through copying an item's payload block in (put) or out (get).
enum class QueueStep { put_published, get_consumed, payload_copying };
extern void (*queue_step_hook)(QueueStep) noexcept;

class QueueCore {
 public:
  // Called with an item's bytes, valid only during the call.
  using Consumer = void (*)(void* context, std::span<const std::byte> item);

  // maxsize 0: no limit on the number of items. buffer_bytes: the ring's size (rounded up to a
  // power of two); items up to an eighth of it travel inline, larger ones (and any item put while
  // the ring is full) in a payload block that the ring or an overflow list refers to.
  // tag: the typed queue's element type (element_tag), checked when a handle is received.
  QueueCore(std::size_t maxsize, std::size_t buffer_bytes, std::uint64_t tag);
  // The queue h names (SerializationError when it names no live queue of this tag).
  QueueCore(const ObjectHandle& h, std::uint64_t tag);
  // What crosses to another process.
  [[nodiscard]] ObjectHandle handle() const noexcept;
  // Writes bytes [from, from + to.size()) of a message of known length into to: a big item is
  // encoded straight into its payload block, with no encode buffer between (Queue::put).
  using Filler = void (*)(const void* context, std::size_t from, std::span<std::byte> to) noexcept;
  // Appends one message; false when the timeout passed first (only a bounded queue waits).
  // Throws std::bad_alloc when the shared heap has no room for it.
  bool put(std::span<const std::byte> message, OptNanos timeout);
  // The same for a message of length bytes that fill writes (possibly in pieces, in any order).
  bool put(std::size_t length, Filler fill, const void* context, OptNanos timeout);
  // Takes the oldest message and passes it to consume; false when the timeout passed first. The
  // item is taken even when consume throws.
  bool get(Consumer consume, void* context, OptNanos timeout);
  [[nodiscard]] std::size_t qsize() const noexcept;
  [[nodiscard]] bool full() const noexcept;
  [[nodiscard]] std::size_t maxsize() const noexcept;
  // JoinableQueue: every put counts an unfinished task; task_done() counts one finished.
  void task_done();
  bool join(OptNanos timeout);

 private:
  std::shared_ptr<QueueState> s_;
};

}  // namespace mproc::detail
