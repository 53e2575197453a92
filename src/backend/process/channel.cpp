#include "backend/process/channel.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>

#include "mproc/errors.hpp"
#include "os/os.hpp"

namespace mproc::detail {

void Bell::ring() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (word.load(std::memory_order_relaxed) != 0 && word.exchange(0, std::memory_order_seq_cst) != 0)
    os::futex_wake(word, INT_MAX, /*shared=*/true);
}

void Bell::sleep(Nanos timeout) noexcept {
  try {
    os::futex_wait(word, 1, timeout, /*shared=*/true);
  } catch (...) {
    // A futex failure other than a timeout or a wake is a bug; treat it as a spurious wake.
  }
}

void Ring::copy_in(std::uint64_t at, const std::byte* src, std::size_t n) noexcept {
  if (n == 0) return;  // src may be null: an empty span
  std::size_t off = static_cast<std::size_t>(at) & mask_;
  std::size_t first = std::min(n, capacity() - off);
  std::memcpy(data_ + off, src, first);
  if (n > first) std::memcpy(data_, src + first, n - first);
}

void Ring::copy_out(std::uint64_t at, std::byte* dst, std::size_t n) const noexcept {
  if (n == 0) return;
  std::size_t off = static_cast<std::size_t>(at) & mask_;
  std::size_t first = std::min(n, capacity() - off);
  std::memcpy(dst, data_ + off, first);
  if (n > first) std::memcpy(dst + first, data_, n - first);
}

namespace {

std::uint64_t message_start(std::uint64_t end_of_previous) noexcept {
  return (end_of_previous + kMessageAlign - 1) & ~std::uint64_t{kMessageAlign - 1};
}

// Bytes from at to head, 0 while head has not reached at (a message's padding, streamed).
std::size_t bytes_between(std::uint64_t at, std::uint64_t head) noexcept {
  return head > at ? static_cast<std::size_t>(head - at) : 0;
}

}  // namespace

std::size_t Ring::free_space() const noexcept {
  return capacity() -
         static_cast<std::size_t>(h_->head.load(std::memory_order_relaxed) - h_->tail.load(std::memory_order_acquire));
}

std::size_t Ring::room(std::uint64_t head, std::size_t want) noexcept {
  std::size_t free = capacity() - static_cast<std::size_t>(head - tail_seen_);
  if (free >= want) return free;
  tail_seen_ = h_->tail.load(std::memory_order_acquire);
  return capacity() - static_cast<std::size_t>(head - tail_seen_);
}

bool Ring::try_send(std::span<const std::byte> a, std::span<const std::byte> b, Wake wake) noexcept {
  std::uint64_t length = a.size() + b.size();
  const std::uint64_t head = h_->head.load(std::memory_order_relaxed);
  const std::uint64_t start = message_start(head);
  const std::uint64_t end = start + sizeof length + length;
  if (end - head > room(head, static_cast<std::size_t>(end - head))) return false;
  copy_in(start, reinterpret_cast<const std::byte*>(&length), sizeof length);
  copy_in(start + sizeof length, a.data(), a.size());
  copy_in(start + sizeof length + a.size(), b.data(), b.size());
  h_->head.store(end, std::memory_order_release);
  if (wake == Wake::now) data_bell_->ring();
  return true;
}

std::size_t Ring::put_some(std::span<const std::byte>& src) noexcept {
  std::uint64_t head = h_->head.load(std::memory_order_relaxed);
  std::size_t n = std::min(src.size(), room(head, src.size()));
  if (n == 0) return 0;
  copy_in(head, src.data(), n);
  h_->head.store(head + n, std::memory_order_release);
  src = src.subspan(n);
  data_bell_->ring();
  return n;
}

void Ring::send(std::span<const std::byte> a, std::span<const std::byte> b, const GiveUp& give_up, Wake wake) {
  if (try_send(a, b, wake)) return;
  std::uint64_t length = a.size() + b.size();
  // The padding before the message streams too: its bytes are never read.
  static constexpr std::byte kPadding[kMessageAlign]{};
  const std::uint64_t head = h_->head.load(std::memory_order_relaxed);
  std::span<const std::byte> parts[4] = {{kPadding, static_cast<std::size_t>(message_start(head) - head)},
                                         {reinterpret_cast<const std::byte*>(&length), sizeof length},
                                         a,
                                         b};
  for (auto& part : parts) {
    while (!part.empty()) {
      if (put_some(part) == 0)
        wait(
            h_->space, waits::kProcessRingSpace,
            [this] { return room(h_->head.load(std::memory_order_relaxed), 1) > 0; }, give_up);
    }
  }
}

bool Ring::has_message() const noexcept {
  return h_->head.load(std::memory_order_acquire) != h_->tail.load(std::memory_order_relaxed);
}

bool Ring::peek(std::span<std::byte> out) const noexcept {
  const std::uint64_t start = message_start(h_->tail.load(std::memory_order_relaxed));
  std::uint64_t length = 0;
  if (bytes_between(start, h_->head.load(std::memory_order_acquire)) < sizeof length + out.size()) return false;
  copy_out(start, reinterpret_cast<std::byte*>(&length), sizeof length);
  if (length < out.size()) return false;
  copy_out(start + sizeof length, out.data(), out.size());
  return true;
}

void Ring::receive(Writer& out, const WaitPolicy& policy, const GiveUp& give_up) {
  out.clear();
  // Where the next byte is read; the first store of the tail skips the padding before it.
  std::uint64_t at = message_start(h_->tail.load(std::memory_order_relaxed));
  auto available = [&] { return bytes_between(at, h_->head.load(std::memory_order_acquire)); };
  auto take = [&](std::byte* dst, std::size_t n) {
    while (n > 0) {
      std::size_t got = std::min(n, available());
      if (got == 0) {
        wait(
            *data_bell_, policy, [&] { return available() > 0; }, give_up);
        continue;
      }
      copy_out(at, dst, got);
      at += got;
      h_->tail.store(at, std::memory_order_release);
      h_->space.ring();
      dst += got;
      n -= got;
    }
  };
  std::uint64_t length = 0;
  take(reinterpret_cast<std::byte*>(&length), sizeof length);
  if (length > (std::uint64_t{1} << 40))
    throw SerializationError("mproc: corrupt channel: a message of " + std::to_string(length) + " bytes");
  // The length is believed only as far as its bytes arrive: room for a ring's worth at a time,
  // so a corrupt prefix cannot reserve a terabyte before its first byte.
  for (auto left = static_cast<std::size_t>(length); left > 0;) {
    const std::size_t n = std::min(left, capacity());
    take(out.grow(n), n);
    left -= n;
  }
}

void Ring::wait(Bell& bell, const WaitPolicy& policy, const std::function<bool()>& pred, const GiveUp& give_up) {
  // A look that finds what it waits for returns at once, the bell untouched: arming it writes a
  // line the peer reads at every send, and a peer that finds it armed makes a futex wake call.
  for (Backoff backoff(policy); !pred();)
    if (!backoff.pause()) return sleep_on(bell, policy, pred, give_up);
}

void Ring::sleep_on(Bell& bell, const WaitPolicy& policy, const std::function<bool()>& pred, const GiveUp& give_up) {
  for (;;) {
    bell.arm();
    if (pred()) {
      bell.disarm();
      return;
    }
    bell.sleep(policy.sleep);
    if (pred()) return;
    // Look once more after giving up: a peer that wrote its last message and then exited (a
    // worker whose initializer failed) may have done both since the look above.
    if (give_up && give_up()) {
      if (pred()) return;
      throw RingAbandoned{};
    }
  }
}

void Ring::reset() noexcept {
  h_->head.store(0, std::memory_order_relaxed);
  h_->tail.store(0, std::memory_order_relaxed);
  h_->space.word.store(0, std::memory_order_relaxed);
  tail_seen_ = 0;
}

}  // namespace mproc::detail
