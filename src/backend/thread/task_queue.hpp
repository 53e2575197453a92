// task_queue.hpp: TaskQueue — one worker's queue of ThreadTasks: a ring of slots, each with a
// sequence number that says whose turn it is (a push's or a pop's; Vyukov's bounded queue), so
// that a submitter and the worker taking its tasks share no lock and touch no common cache line
// but the slot they hand over. Pushes that find the ring full go to an overflow list under a
// mutex, which pops empty first: first in, first out, but for tasks queued while it was in use.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "mproc/detail/thread_backend.hpp"

namespace mproc::detail {

class TaskQueue {
 public:
  TaskQueue() : slots_(new Slot[kCapacity]) {
    for (std::size_t i = 0; i < kCapacity; ++i) slots_[i].seq.store(i, std::memory_order_relaxed);
  }

  // Adds task at the back; false, leaving task as it was, once the queue is closed.
  [[nodiscard]] bool push(ThreadTask&& task) {
    std::size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      if (pos & kClosed) return false;
      Slot& slot = slots_[pos & (kCapacity - 1)];
      const std::size_t seq = slot.seq.load(std::memory_order_acquire);
      if (seq == pos) {  // free: claim it
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          slot.task = std::move(task);
          slot.seq.store(pos + 1, std::memory_order_release);  // published to pop()
          return true;
        }
      } else if (seq < pos) {  // still holds the task of the previous lap: the ring is full
        return push_overflow(std::move(task));
      } else {
        pos = tail_.load(std::memory_order_relaxed);  // another push claimed it first
      }
    }
  }

  // Refuses every later push; a push that got in first is in the queue when this returns.
  void close() noexcept {
    const std::size_t end = tail_.fetch_or(kClosed, std::memory_order_seq_cst) & ~kClosed;
    // Pushes that claimed a slot before the flag publish it in a moment: wait for each.
    for (std::size_t pos = head_.load(std::memory_order_acquire); pos < end; ++pos)
      while (slots_[pos & (kCapacity - 1)].seq.load(std::memory_order_acquire) == pos) std::this_thread::yield();
    std::lock_guard lock(overflow_mu_);  // and those adding to the overflow list finish first
  }

  // The oldest task; false when empty. steal: give up rather than wait for a contended pop.
  bool pop(ThreadTask& out, bool steal) {
    if (overflow_size_.load(std::memory_order_acquire) != 0 && pop_overflow(out)) return true;
    std::size_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      Slot& slot = slots_[pos & (kCapacity - 1)];
      const std::size_t seq = slot.seq.load(std::memory_order_acquire);
      if (seq != pos + 1) {
        if (seq <= pos) return false;                 // not published yet: empty
        pos = head_.load(std::memory_order_relaxed);  // another pop took it
        continue;
      }
      if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        out = std::move(slot.task);
        slot.seq.store(pos + kCapacity, std::memory_order_release);  // free for the next lap's push
        return true;
      }
      if (steal) return false;
    }
  }

  // Hints; exact once pushes have stopped.
  [[nodiscard]] std::size_t size() const noexcept {
    const std::size_t head = head_.load(std::memory_order_acquire);
    const std::size_t tail = tail_.load(std::memory_order_acquire) & ~kClosed;
    return (tail > head ? tail - head : 0) + overflow_size_.load(std::memory_order_acquire);
  }
  [[nodiscard]] bool empty() const noexcept {
    const std::size_t pos = head_.load(std::memory_order_acquire);
    return slots_[pos & (kCapacity - 1)].seq.load(std::memory_order_acquire) != pos + 1 &&
           overflow_size_.load(std::memory_order_acquire) == 0;
  }

 private:
  static constexpr std::size_t kCapacity = 1024;  // a power of two
  static constexpr std::size_t kClosed = std::size_t{1} << (sizeof(std::size_t) * 8 - 1);

  bool push_overflow(ThreadTask&& task) {
    std::lock_guard lock(overflow_mu_);
    if (tail_.load(std::memory_order_relaxed) & kClosed) return false;
    overflow_.push_back(std::move(task));
    overflow_size_.store(overflow_.size(), std::memory_order_release);
    return true;
  }

  bool pop_overflow(ThreadTask& out) {
    std::lock_guard lock(overflow_mu_);
    if (overflow_.empty()) return false;
    out = std::move(overflow_.front());
    overflow_.pop_front();
    overflow_size_.store(overflow_.size(), std::memory_order_release);
    return true;
  }

  struct alignas(64) Slot {
    std::atomic<std::size_t> seq;  // pos: free for the push at pos; pos + 1: holds its task
    ThreadTask task;
  };

  std::unique_ptr<Slot[]> slots_;
  alignas(64) std::atomic<std::size_t> tail_{0};  // the next push's position, with kClosed once closed
  alignas(64) std::atomic<std::size_t> head_{0};  // the next pop's position
  std::atomic<std::size_t> overflow_size_{0};     // on head_'s line: every pop and look reads both
  std::mutex overflow_mu_;
  std::deque<ThreadTask> overflow_;  // guarded by overflow_mu_
};

}  // namespace mproc::detail
