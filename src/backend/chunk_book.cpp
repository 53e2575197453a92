#include "mproc/detail/chunk_book.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "mproc/errors.hpp"

namespace mproc::detail {
namespace {

constexpr std::size_t kSpareBuffers = 16;          // chunk buffers kept for reuse...
constexpr std::size_t kSpareBufferMax = 64 << 20;  // ...each up to this size

}  // namespace

std::exception_ptr terminated_error() {
  return std::make_exception_ptr(PoolNotRunning("mproc: the pool was terminated before this task finished"));
}

std::vector<Record> take_chunks_of(std::deque<Record>& queue, const JobBase& job) {
  auto of_job = [&job](const Record& r) { return r.job.get() == &job; };
  std::vector<Record> taken;
  if (job.chunks() == 1) {
    for (std::size_t lo = 0, hi = queue.size(); lo < hi; ++lo, --hi) {
      const std::size_t at = of_job(queue[lo]) ? lo : of_job(queue[hi - 1]) ? hi - 1 : SIZE_MAX;
      if (at == SIZE_MAX) continue;
      taken.push_back(std::move(queue[at]));
      queue.erase(queue.begin() + static_cast<std::ptrdiff_t>(at));
      break;
    }
    return taken;
  }
  // One pass: the other jobs' records move up over the taken ones, in order, and the tail goes.
  auto out = std::find_if(queue.begin(), queue.end(), of_job);
  for (auto it = out; it != queue.end(); ++it) {
    if (of_job(*it))
      taken.push_back(std::move(*it));
    else
      *out++ = std::move(*it);
  }
  queue.erase(out, queue.end());
  return taken;
}

void ChunkBook::fail_cancelled(std::span<Record> records) {
  if (records.empty()) return;
  auto error = cancelled_error();
  for (auto& r : records) {
    recycle(std::move(r.task));
    r.job->fail(r.first, r.count, error);
  }
}

Writer ChunkBook::take_buffer() {
  Writer w;
  {
    std::lock_guard lock(buffers_mu_);
    if (!buffers_.empty()) {
      w = std::move(buffers_.back());
      buffers_.pop_back();
    }
  }
  if (spill_tasks_) w.spill_to_heap();
  return w;
}

void ChunkBook::recycle(Writer buffer) noexcept {
  // A block of the heap goes back to it: the heap keeps free blocks warm for the next frame, to
  // its own bound, and another process may use it meanwhile.
  if (buffer.capacity() > kSpareBufferMax || buffer.in_heap()) return;
  buffer.clear();
  std::lock_guard lock(buffers_mu_);
  if (buffers_.size() < kSpareBuffers) buffers_.push_back(std::move(buffer));
}

void ChunkBook::check_running() const {
  if (!broken_.empty()) throw PoolNotRunning(broken_);
  if (phase_ != Phase::running)
    throw PoolNotRunning(phase_ == Phase::closed ? "mproc: the pool is closed" : "mproc: the pool was terminated");
}

void ChunkBook::check_joinable() const {
  if (phase_ == Phase::running)
    throw std::logic_error(std::string("mproc: ") + pool_name_ + "::join: call close() or terminate() first");
}

void ChunkBook::close() noexcept {
  if (phase_ == Phase::running) phase_ = Phase::closed;
}

void ChunkBook::number(Record& record) {
  record.seq = next_seq_++;
  set_task_seq(record.task, record.seq);
}

void ChunkBook::chunk_took(std::int64_t ns) noexcept {
  const auto took = static_cast<double>(ns);
  const double avg = avg_chunk_ns();
  avg_chunk_ns_.store(avg <= 0 ? took : 0.9 * avg + 0.1 * took, std::memory_order_relaxed);
}

std::size_t ChunkBook::window() const noexcept {
  // Long chunks go few at a time, as Python's workers pull them, so none waits behind a slow
  // one while another worker idles; short ones are queued ahead, to hide the round trip.
  const double avg = avg_chunk_ns();
  if (avg <= 0) return pace_.first_window;
  return std::clamp<std::size_t>(static_cast<std::size_t>(pace_.queue_ahead_ns / avg), pace_.min_window,
                                 pace_.max_window);
}

}  // namespace mproc::detail
