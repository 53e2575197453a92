// queue_core.hpp: QueueCore, the untyped queue behind Queue, SimpleQueue and JoinableQueue: a
// byte ring in a shared anonymous mapping, guarded by a robust process-shared mutex, with futex
// words getters and putters sleep on after a short spin.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "mproc/detail/buffer.hpp"
#include "mproc/detail/shared_region.hpp"

namespace mproc::detail {

struct QueueState;

// Tests only: when set, called holding the queue's lock at the points where a put or a get is
// half done (put: the item is in the ring; get: it is out), so that a test can kill the
// process there.
enum class QueueStep { put_published, get_consumed };
extern void (*queue_step_hook)(QueueStep) noexcept;

class QueueCore {
 public:
  // maxsize 0: no limit on the number of items. buffer_bytes: the ring's size (rounded up to a
  // power of two); one item may take at most buffer_bytes - 8 once encoded.
  QueueCore(std::size_t maxsize, std::size_t buffer_bytes);
  // Appends one message; false when the timeout passed first. Throws std::length_error when the
  // message can never fit.
  bool put(std::span<const std::byte> message, OptNanos timeout);
  // Takes the oldest message into out (cleared first); false when the timeout passed first.
  bool get(Writer& out, OptNanos timeout);
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
