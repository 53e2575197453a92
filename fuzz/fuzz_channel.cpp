// fuzz_channel: libFuzzer target for the channel's frame reader. The first byte picks the ring's
// capacity (64 B .. 8 KiB); the rest is what a producer wrote into the ring from its start: u64
// length prefixes, each at a multiple of kMessageAlign (the padding before it is skipped), and
// message bytes, arbitrary. The ring lives in ordinary memory; this file plays the producer,
// copying the input in as space frees, and give_up() refills the ring, or ends the wait once the
// input is spent, so receive() can never hang. A frame reader given any bytes may only deliver
// messages, throw mproc::SerializationError, or be abandoned (RingAbandoned) at the end of input;
// a length prefix it cannot refuse (up to 2^40) costs it no more memory than the bytes that came.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "backend/process/channel.hpp"
#include "mproc/errors.hpp"

namespace {

using mproc::detail::Bell;
using mproc::detail::Ring;
using mproc::detail::RingAbandoned;
using mproc::detail::RingHeader;
using mproc::detail::Writer;

// The producer's side of a ring, over the same memory the Ring reads.
class Producer {
 public:
  Producer(RingHeader& header, std::span<std::byte> data, std::span<const std::byte> input)
      : header_(header), data_(data), input_(input) {}

  // Copies as much of the remaining input as fits; returns how many bytes it published.
  std::size_t feed() {
    std::uint64_t head = header_.head.load(std::memory_order_relaxed);
    std::uint64_t tail = header_.tail.load(std::memory_order_acquire);
    std::size_t free = data_.size() - static_cast<std::size_t>(head - tail);
    std::size_t n = std::min(free, input_.size());
    for (std::size_t i = 0; i < n; ++i) data_[static_cast<std::size_t>(head + i) & (data_.size() - 1)] = input_[i];
    input_ = input_.subspan(n);
    header_.head.store(head + n, std::memory_order_release);
    return n;
  }
  [[nodiscard]] bool spent() const { return input_.empty(); }

 private:
  RingHeader& header_;
  std::span<std::byte> data_;
  std::span<const std::byte> input_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t capacity = std::size_t{64} << (data[0] % 8);
  std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data) + 1, size - 1);

  RingHeader header;
  Bell data_bell;
  std::vector<std::byte> ring_data(capacity);
  Ring ring(&header, ring_data.data(), capacity, &data_bell);
  Producer producer(header, ring_data, input);
  producer.feed();

  // No spin, and 1 ns sleeps on the data bell, after each of which give_up refills the ring, or
  // gives up when nothing is left.
  using mproc::detail::Nanos;
  constexpr mproc::detail::WaitPolicy kNoSpin{Nanos::zero(), Nanos::zero(), Nanos(1)};
  auto give_up = [&producer] { return producer.feed() == 0 && producer.spent(); };
  Writer message;
  std::size_t delivered = 0;
  try {
    while (ring.has_message() || !producer.spent()) {
      ring.receive(message, kNoSpin, give_up);
      delivered += message.size();
      if (delivered > size) __builtin_trap();  // more bytes out than went in
      producer.feed();
    }
  } catch (const RingAbandoned&) {
    // The input ended inside a message.
  } catch (const mproc::SerializationError&) {
    // A length prefix no sender could have written.
  }
  return 0;
}
