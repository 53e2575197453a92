// channel.hpp: Bell and Ring — the process pool's transport. A Ring is a single-producer,
// single-consumer byte ring in memory shared by two processes, carrying length-prefixed
// messages of any size (a message larger than the ring streams through it). A Bell is the futex
// word a side sleeps on after a bounded spin; the other side rings it only when someone sleeps.
//
// What a message costs is mostly the cache lines that move between the two cores. So each
// message begins on a cache line of its own (kMessageAlign): one of up to 56 bytes (a task of
// one call, a result) moves one line of data, not the two it would straddle packed. And the
// producer reads the consumer's position only when the room it last saw runs out: the tail's
// line stays with the consumer, which writes it after every message.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "backoff.hpp"
#include "mproc/detail/buffer.hpp"
#include "mproc/detail/wait.hpp"

namespace mproc::detail {

// Lives in shared memory. word is 1 while a sleeper waits (or is about to).
struct Bell {
  std::atomic<std::uint32_t> word{0};

  // Wakes the sleepers, if any: a load and nothing more when nobody sleeps.
  void ring() noexcept;
  // Announces the caller is about to sleep: after arm(), re-check the condition, then sleep().
  void arm() noexcept { word.store(1, std::memory_order_seq_cst); }
  void disarm() noexcept { word.store(0, std::memory_order_relaxed); }
  // Sleeps until rung or timeout; returns at once if not armed.
  void sleep(Nanos timeout) noexcept;
};

// A message starts at a multiple of this, in the ring: the bytes before it since the previous
// message's end are padding, skipped by both sides.
constexpr std::size_t kMessageAlign = 64;

struct alignas(64) RingHeader {
  // Positions count bytes since the ring's start, padding included, and never wrap.
  alignas(64) std::atomic<std::uint64_t> head{0};  // the end of what is written; written by the producer
  alignas(64) std::atomic<std::uint64_t> tail{0};  // the end of what is read; written by the consumer
  alignas(64) Bell space;                          // the producer sleeps here while the ring is full
};

// Called while a side waits; returning true abandons the wait (the peer died, or shutdown).
using GiveUp = std::function<bool()>;

// Thrown when a wait is abandoned through GiveUp.
struct RingAbandoned {};

// Whether a message that fits wakes the consumer (rings its data bell) or leaves it asleep, for
// a producer that knows the consumer will be woken by a later message. One that streams through
// the ring always rings: the consumer must read for the producer to go on.
enum class Wake : bool { later, now };

class Ring {
 public:
  Ring() = default;
  // capacity must be a power of two; data holds capacity bytes; data_bell is the consumer's.
  Ring(RingHeader* header, std::byte* data, std::size_t capacity, Bell* data_bell) noexcept
      : h_(header), data_(data), mask_(capacity - 1), data_bell_(data_bell) {}

  // Producer: sends [a][b] as one message if it fits now, without waiting.
  bool try_send(std::span<const std::byte> a, std::span<const std::byte> b, Wake wake = Wake::now) noexcept;
  // Producer: sends [a][b], streaming through the ring and waiting for space as needed.
  // Throws RingAbandoned when give_up() says so (the message is then partly sent).
  void send(std::span<const std::byte> a, std::span<const std::byte> b, const GiveUp& give_up, Wake wake = Wake::now);

  // Consumer: whether a message has begun to arrive.
  [[nodiscard]] bool has_message() const noexcept;
  // Consumer: copies the first out.size() bytes of the next message into out, leaving it in the
  // ring; false when the message is shorter or that much of it has not arrived.
  [[nodiscard]] bool peek(std::span<std::byte> out) const noexcept;
  // Consumer: reads the next whole message into out (cleared first), waiting for its bytes as
  // policy says, sleeping on the data bell. Throws RingAbandoned.
  void receive(Writer& out, const WaitPolicy& policy, const GiveUp& give_up);

  // Empties the ring; only while neither side uses it.
  void reset() noexcept;
  [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }
  // Free bytes, read from both positions: for any thread, not only the producer's.
  [[nodiscard]] std::size_t free_space() const noexcept;

 private:
  void copy_in(std::uint64_t at, const std::byte* src, std::size_t n) noexcept;
  void copy_out(std::uint64_t at, std::byte* dst, std::size_t n) const noexcept;
  // Producer: free bytes, from the consumer's position as last read, read again when that
  // leaves less than want.
  std::size_t room(std::uint64_t head, std::size_t want) noexcept;
  std::size_t put_some(std::span<const std::byte>& src) noexcept;  // returns bytes published
  // Waits until pred() or give_up(); spins, then sleeps on bell, as policy says, checking
  // give_up() after each sleep (not while spinning: it may cost a system call).
  static void wait(Bell& bell, const WaitPolicy& policy, const std::function<bool()>& pred, const GiveUp& give_up);
  // wait()'s second half, once its spin is over: arms bell, sleeps on it, looks again.
  static void sleep_on(Bell& bell, const WaitPolicy& policy, const std::function<bool()>& pred, const GiveUp& give_up);

  RingHeader* h_ = nullptr;
  std::byte* data_ = nullptr;
  std::size_t mask_ = 0;
  Bell* data_bell_ = nullptr;
  std::uint64_t tail_seen_ = 0;  // the producer's last read of the tail
};

}  // namespace mproc::detail
