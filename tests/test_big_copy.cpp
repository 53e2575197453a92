// copy_big (buffer.hpp, src/big_copy.cpp): copies of 8 MB or more are shared by two threads, a
// chunk at a time. Every size and alignment arrives whole, with nothing written outside the
// destination; copies the helper took chunks of arrive whole; copies from several threads at once
// (one has the helper, the others copy alone); a decode that reuses a spare overwrites its
// elements; a forked child, whose parent's helper did not cross the fork, copies with a helper of
// its own.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/codec.hpp"
#include "mproc/detail/buffer.hpp"

using mproc::detail::copy_big;
using mproc::detail::kBigCopyBytes;

namespace {

std::vector<unsigned char> pattern(std::size_t n, unsigned seed) {
  std::vector<unsigned char> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>((i * 131 + seed) >> 3);
  return v;
}

// Copies n bytes at from_offset into a buffer at to_offset, with guard bytes around it; true when
// the copy is whole and nothing around it changed.
bool copies_whole(std::size_t n, std::size_t from_offset, std::size_t to_offset, unsigned seed) {
  const auto from = pattern(n + from_offset, seed);
  std::vector<unsigned char> to(n + to_offset + 64, 0xee);
  copy_big(to.data() + to_offset, from.data() + from_offset, n);
  for (std::size_t i = 0; i < to_offset; ++i)
    if (to[i] != 0xee) return false;
  for (std::size_t i = to_offset + n; i < to.size(); ++i)
    if (to[i] != 0xee) return false;
  return std::equal(from.begin() + static_cast<std::ptrdiff_t>(from_offset), from.end(),
                    to.begin() + static_cast<std::ptrdiff_t>(to_offset));
}

// Copies n bytes again and again until the helper has taken chunks of one (it takes them when it
// runs before the caller has taken them all): true when it did within 20 s and every copy arrived
// whole.
bool copies_whole_until_helped(std::size_t n) {
  const std::uint64_t before = mproc::detail::big_copies_helped();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (unsigned seed = 0; std::chrono::steady_clock::now() < deadline; ++seed) {
    if (!copies_whole(n, 3, 5, seed)) return false;
    if (mproc::detail::big_copies_helped() != before) return true;
  }
  return false;
}

}  // namespace

TEST(CodecBigCopy, EverySizeAndAlignmentArrivesWhole) {
  const std::size_t b = kBigCopyBytes;
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{4095}, b - 1, b, b + 1, b + 4095, 2 * b + 7})
    for (std::size_t from_offset : {0, 1, 3})
      for (std::size_t to_offset : {0, 5})
        EXPECT_TRUE(copies_whole(n, from_offset, to_offset, static_cast<unsigned>(n + from_offset)))
            << n << " bytes, from +" << from_offset << ", to +" << to_offset;
}

TEST(CodecBigCopy, ACopyTheHelperTookChunksOfArrivesWhole) {
  // Neither a whole number of chunks nor of pages, and misaligned on both sides.
  EXPECT_TRUE(copies_whole_until_helped(2 * kBigCopyBytes + 4097));
}

TEST(CodecBigCopy, CopiesFromManyThreadsAtOnceAllArriveWhole) {
  std::vector<std::thread> threads;
  std::vector<int> whole(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 8; ++i)
        whole[static_cast<std::size_t>(t)] +=
            copies_whole(kBigCopyBytes + 4096 * static_cast<std::size_t>(i), 0, 0, static_cast<unsigned>(t * 8 + i));
    });
  for (auto& t : threads) t.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(whole[static_cast<std::size_t>(t)], 8) << "thread " << t;
}

TEST(CodecBigCopy, ADecodeIntoABiggerSpareOverwritesItsElements) {
  std::vector<std::uint32_t> sent(kBigCopyBytes / 4 + 3);
  std::iota(sent.begin(), sent.end(), 7u);
  mproc::detail::Writer w;
  mproc::detail::encode(w, sent);
  std::vector<std::uint32_t> spare(sent.size() * 2, 0xdeadbeef);  // as a spare: bigger, its size kept
  mproc::detail::Reader r(w.bytes());
  mproc::detail::decode_into(r, spare);
  EXPECT_EQ(spare, sent);
  std::vector<char> bytes(kBigCopyBytes + 1, 'b');
  mproc::detail::Writer wb;
  mproc::detail::encode(wb, bytes);
  std::vector<char> bigger(bytes.size() + 100, 'x');
  mproc::detail::Reader rb(wb.bytes());
  mproc::detail::decode_into(rb, bigger);
  EXPECT_EQ(bigger, bytes);
}

TEST(BigCopyFork, AForkedChildCopiesWithAHelperOfItsOwn) {
  ASSERT_TRUE(copies_whole(kBigCopyBytes * 2, 0, 0, 1));  // the parent's helper, made
  ASSERT_TRUE(copies_whole(kBigCopyBytes * 2, 0, 0, 2));  // and used
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::alarm(40);  // a hang in the child ends it, and fails the test
    // Helped by the child's own helper (the first big copy makes it).
    ::_exit(copies_whole_until_helped(kBigCopyBytes * 2 + 1) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  EXPECT_TRUE(copies_whole(kBigCopyBytes * 2, 0, 0, 3));  // the parent's goes on
}
