// task_queue.hpp: TaskQueue — one worker's FIFO of ThreadTasks: a growable ring under a
// spinlock, with a size readable without the lock so idle workers scan without contending.
#pragma once

#include <emmintrin.h>

#include <atomic>
#include <cstddef>
#include <thread>
#include <utility>
#include <vector>

#include "mproc/detail/thread_backend.hpp"

namespace mproc::detail {

class TaskQueue {
 public:
  TaskQueue() : ring_(kInitialCapacity) {}

  // Adds task at the back and returns how many tasks the queue then holds; 0, leaving task as
  // it was, once the queue is closed.
  [[nodiscard]] std::size_t push(ThreadTask&& task) {
    lock();
    if (closed_) {
      unlock();
      return 0;
    }
    if (size_.load(std::memory_order_relaxed) == ring_.size()) {
      try {
        grow();
      } catch (...) {
        unlock();
        throw;
      }
    }
    std::size_t n = size_.load(std::memory_order_relaxed);
    ring_[(head_ + n) & (ring_.size() - 1)] = std::move(task);
    size_.store(n + 1, std::memory_order_relaxed);
    unlock();
    return n + 1;
  }

  // Refuses every later push; a push that got in first is in the queue when this returns.
  void close() noexcept {
    lock();
    closed_ = true;
    unlock();
  }

  // The oldest task; false when empty. steal: give up rather than wait for the lock.
  bool pop(ThreadTask& out, bool steal) {
    if (empty()) return false;
    if (!steal)
      lock();
    else if (!try_lock())
      return false;
    std::size_t n = size_.load(std::memory_order_relaxed);
    if (n == 0) {
      unlock();
      return false;
    }
    out = std::move(ring_[head_]);
    // Emptied, the ring starts over at its first slot: the next pushes reuse the slots (and
    // cache lines) just used, rather than walk through all of a ring that once grew.
    head_ = n == 1 ? 0 : (head_ + 1) & (ring_.size() - 1);
    size_.store(n - 1, std::memory_order_relaxed);
    unlock();
    return true;
  }

  // A hint without the lock; exact once pushes have stopped.
  [[nodiscard]] bool empty() const noexcept { return size_.load(std::memory_order_acquire) == 0; }

 private:
  static constexpr std::size_t kInitialCapacity = 256;  // a power of two, as every capacity

  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void lock() noexcept {
    for (unsigned spins = 0; !try_lock(); ++spins) {
      // A holder that lost its CPU would make us spin a whole time slice: give ours up.
      if ((spins & 63) == 63)
        std::this_thread::yield();
      else
        _mm_pause();
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

  void grow() {  // under the lock, when full
    std::vector<ThreadTask> bigger(ring_.size() * 2);
    for (std::size_t i = 0; i < ring_.size(); ++i) bigger[i] = std::move(ring_[(head_ + i) & (ring_.size() - 1)]);
    ring_.swap(bigger);
    head_ = 0;
  }

  alignas(64) std::atomic<bool> locked_{false};
  std::atomic<std::size_t> size_{0};  // written under the lock
  std::size_t head_ = 0;              // guarded by locked_
  bool closed_ = false;               // guarded by locked_
  std::vector<ThreadTask> ring_;      // guarded by locked_
};

}  // namespace mproc::detail
