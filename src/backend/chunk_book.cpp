#include "mproc/detail/chunk_book.hpp"

#include <algorithm>
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

Writer ChunkBook::take_buffer() {
  std::lock_guard lock(buffers_mu_);
  if (buffers_.empty()) return Writer{};
  Writer w = std::move(buffers_.back());
  buffers_.pop_back();
  return w;
}

void ChunkBook::recycle(Writer buffer) noexcept {
  if (buffer.capacity() > kSpareBufferMax) return;
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
  avg_chunk_ns_ = avg_chunk_ns_ <= 0 ? took : 0.9 * avg_chunk_ns_ + 0.1 * took;
}

std::size_t ChunkBook::window() const noexcept {
  // Long chunks go few at a time, as Python's workers pull them, so none waits behind a slow
  // one while another worker idles; short ones are queued ahead, to hide the round trip.
  if (avg_chunk_ns_ <= 0) return pace_.first_window;
  return std::clamp<std::size_t>(static_cast<std::size_t>(pace_.queue_ahead_ns / avg_chunk_ns_), pace_.min_window,
                                 pace_.max_window);
}

}  // namespace mproc::detail
