// The process pool's Ring (src/backend/process/channel.hpp), between two threads of this process:
// messages start on cache lines of their own, the padding before them is skipped by both sides
// (streamed too, when the ring is nearly full), a producer whose view of the consumer is stale
// finds the room the consumer has made since, and a corrupt length reserves nothing up front.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <span>
#include <thread>
#include <vector>

#include "backend/process/channel.hpp"
#include "backoff.hpp"

namespace mproc::detail {
namespace {

constexpr std::size_t kRingBytes = 1024;

class SmallRing : public ::testing::Test {
 protected:
  SmallRing() : ring_(&header_, data_.data(), kRingBytes, &data_bell_) {}

  // A message of n bytes, each its position plus salt (mod 256): a message read whole and in
  // order reads back as sent.
  static std::vector<std::byte> message(std::size_t n, unsigned salt) {
    std::vector<std::byte> m(n);
    for (std::size_t i = 0; i < n; ++i) m[i] = static_cast<std::byte>((i + salt) & 0xff);
    return m;
  }

  std::vector<std::byte> receive() {
    Writer inbox;
    ring_.receive(inbox, waits::kProcessMessage, nullptr);
    return {inbox.bytes().begin(), inbox.bytes().end()};
  }

  std::uint64_t head() const { return header_.head.load(); }
  std::uint64_t tail() const { return header_.tail.load(); }

  RingHeader header_;
  Bell data_bell_;
  alignas(64) std::array<std::byte, kRingBytes> data_{};
  Ring ring_;
};

TEST_F(SmallRing, EachMessageStartsOnACacheLineOfItsOwn) {
  auto one = message(1, 0), two = message(20, 1);
  ASSERT_TRUE(ring_.try_send(one, {}));
  EXPECT_EQ(head(), sizeof(std::uint64_t) + 1);
  ASSERT_TRUE(ring_.try_send(two, {}));
  EXPECT_EQ(head(), kMessageAlign + sizeof(std::uint64_t) + 20);  // the second begins at 64
  EXPECT_EQ(receive(), one);
  std::array<std::byte, 4> first{};
  ASSERT_TRUE(ring_.peek(first));  // across the padding
  EXPECT_EQ(std::vector<std::byte>(first.begin(), first.end()), std::vector<std::byte>(two.begin(), two.begin() + 4));
  EXPECT_EQ(receive(), two);
  EXPECT_EQ(tail(), head());
  EXPECT_FALSE(ring_.has_message());
  EXPECT_EQ(ring_.free_space(), ring_.capacity());
}

TEST_F(SmallRing, AMessageThatDoesNotFitWithItsPaddingIsRefusedWhole) {
  ASSERT_TRUE(ring_.try_send(message(1, 0), {}));  // the next would begin at 64
  const auto big = message(kRingBytes - kMessageAlign, 2);
  EXPECT_FALSE(ring_.try_send(big, {}));  // it would end at 64 + 8 + 960 = 1032, past 1024
  EXPECT_EQ(head(), sizeof(std::uint64_t) + 1);
  EXPECT_EQ(receive(), message(1, 0));
  // Its room is the consumer's now; the producer's view of the tail is stale until it reads again.
  ASSERT_TRUE(ring_.try_send(big, {}));
  EXPECT_EQ(receive(), big);
}

TEST_F(SmallRing, AProducerWithAStaleViewOfTheTailFindsTheRoomMadeSince) {
  // Fill the ring, then empty it by several receives: each try_send after that must see the room.
  for (int round = 0; round < 50; ++round) {
    std::vector<std::vector<std::byte>> sent;
    for (unsigned k = 0;; ++k) {
      auto m = message(40 + (k * 37 + static_cast<unsigned>(round)) % 90, k);
      if (!ring_.try_send(m, {})) break;
      sent.push_back(std::move(m));
    }
    ASSERT_GE(sent.size(), 5u);
    for (const auto& m : sent) ASSERT_EQ(receive(), m);
    ASSERT_FALSE(ring_.has_message());
  }
}

TEST_F(SmallRing, ACorruptLengthCostsNoMoreMemoryThanTheBytesThatCame) {
  // A length no sender wrote (half a terabyte), and 100 bytes of its message: the reader takes
  // what came, waits for the rest, and gives up, having reserved a ring's worth, not the length.
  const std::uint64_t length = std::uint64_t{1} << 39;
  std::memcpy(data_.data(), &length, sizeof length);
  header_.head.store(sizeof length + 100);
  Writer inbox;
  EXPECT_THROW(ring_.receive(inbox, waits::kProcessMessage, [] { return true; }), RingAbandoned);
  EXPECT_LE(inbox.capacity(), 2 * kRingBytes);
}

TEST_F(SmallRing, MessagesOfEverySizeStreamBetweenTwoThreadsInOrder) {
  // Sizes from empty to several times the ring, so that streaming begins at every offset in a
  // line (its padding streamed as well, part of it at a time when the ring is nearly full).
  std::vector<std::size_t> sizes(300);
  std::iota(sizes.begin(), sizes.end(), std::size_t{0});
  for (std::size_t k = 0; k < 60; ++k) sizes.push_back(kRingBytes / 2 + k * 97);
  std::thread producer([&] {
    unsigned salt = 0;
    for (std::size_t n : sizes) {
      auto m = message(n, salt++);
      std::span<const std::byte> whole(m);
      ring_.send(whole.first(n / 3), whole.subspan(n / 3), nullptr);
    }
  });
  unsigned salt = 0;
  for (std::size_t n : sizes) ASSERT_EQ(receive(), message(n, salt++)) << "message of " << n << " bytes";
  producer.join();
  EXPECT_FALSE(ring_.has_message());
  EXPECT_EQ(ring_.free_space(), ring_.capacity());
}

}  // namespace
}  // namespace mproc::detail
