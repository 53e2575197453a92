// Tests of Pipe, Connection and wait() between processes.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/pipe.hpp"
#include "mproc/process.hpp"

using namespace std::chrono_literals;

TEST(pipe_Pipe, DuplexBothWaysWithBoundaries) {
  auto [left, right] = mproc::Pipe<std::string>();
  mproc::Process child([&] {
    left.close();
    for (;;) {
      std::string s = right.recv();
      if (s == "stop") break;
      right.send(s + "!");
    }
  });
  child.start();
  right.close();
  left.send("a");
  left.send("");
  left.send(std::string(1000, 'z'));
  EXPECT_EQ(left.recv(), "a!");
  EXPECT_EQ(left.recv(), "!");
  EXPECT_EQ(left.recv().size(), 1001u);
  left.send("stop");
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_THROW(left.recv(), mproc::EOFError);
}

namespace {
// The child of the idiom below: sends 0..count-1 and returns.
void write_numbers(mproc::Connection<int>& w, int count) {
  for (int i = 0; i < count; ++i) w.send(i);
}

// Reads until EOFError; a recv() that would wait more than 10 s fails the test instead.
std::vector<int> read_until_eof(mproc::Connection<int>& r) {
  std::vector<int> got;
  for (;;) {
    if (!r.poll(10s)) {
      ADD_FAILURE() << "no end of file: a copy of the writer is still open in the parent";
      return got;
    }
    try {
      got.push_back(r.recv());
    } catch (const mproc::EOFError&) {
      return got;
    }
  }
}
}  // namespace

// Python's idiom: the parent hands the writer to a child, closes its own copy, and reads until
// EOFError. The Connection passed as an lvalue stays the parent's (the Process keeps a duplicate
// for the child); docs/process-safety.md shows this example.
TEST(pipe_Pipe, ParentClosesItsWriterThenReadsUntilEOF) {
  auto [r, w] = mproc::Pipe<int>(false);
  mproc::Process p(write_numbers, w, 3);
  p.start();
  w.close();
  EXPECT_EQ(read_until_eof(r), (std::vector<int>{0, 1, 2}));
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

// An end moved into a Process is the child's alone: start() drops the parent's copy, so EOF comes
// when the child ends, without join() or close(). The child may take it by value.
TEST(pipe_Pipe, WriterMovedIntoAProcessClosesInTheParentAtStart) {
  auto [r, w] = mproc::Pipe<int>(false);
  mproc::Process p([](mproc::Connection<int> mine) { mine.send(7); }, std::move(w));
  p.start();
  EXPECT_EQ(read_until_eof(r), (std::vector<int>{7}));
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(pipe_Pipe, SixteenMebibyteMessage) {
  auto [reader, writer] = mproc::Pipe<std::vector<char>>(false);
  EXPECT_TRUE(reader.readable());
  EXPECT_FALSE(reader.writable());
  EXPECT_TRUE(writer.writable());
  mproc::Process child([&] {
    std::vector<char> big(16u << 20);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
    writer.send(big);
  });
  child.start();
  writer.close();
  auto got = reader.recv();
  ASSERT_EQ(got.size(), 16u << 20);
  bool same = true;
  for (std::size_t i = 0; i < got.size(); ++i) same = same && got[i] == static_cast<char>(i * 7);
  EXPECT_TRUE(same);
  child.join();
  EXPECT_THROW(reader.recv(), mproc::EOFError);
  EXPECT_THROW(reader.send({}), std::logic_error);
}

TEST(pipe_Pipe, BytesPollAndSendToClosedPeer) {
  auto [a, b] = mproc::Pipe<int>();
  EXPECT_FALSE(b.poll());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(b.poll(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 45ms);
  a.send_bytes(std::string_view("raw"));
  EXPECT_TRUE(b.poll(1s));
  auto bytes = b.recv_bytes();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "raw");
  b.close();
  EXPECT_THROW(a.send(1), std::system_error);  // EPIPE, and no SIGPIPE
}

TEST(pipe_Wait, ConnectionsAndSentinels) {
  auto [r1, w1] = mproc::Pipe<int>(false);
  auto [r2, w2] = mproc::Pipe<int>(false);
  EXPECT_TRUE(mproc::wait({r1, r2}, 20ms).empty());
  mproc::Process child([&] {
    std::this_thread::sleep_for(30ms);
    w2.send(5);
  });
  child.start();
  auto ready = mproc::wait({r1, r2});
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0], r2.fileno());
  EXPECT_EQ(r2.recv(), 5);
  auto done = mproc::wait({r1, child.sentinel()}, 10s);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0], child.sentinel());
  child.join();
}

namespace {
void on_usr1(int) {}
}  // namespace

TEST(pipe_Pipe, SendAndRecvSurviveSignals) {
  struct sigaction sa {
  }, old{};
  sa.sa_handler = on_usr1;  // no SA_RESTART
  ::sigaction(SIGUSR1, &sa, &old);
  auto [a, b] = mproc::Pipe<std::vector<char>>();
  mproc::Process child([&] {
    a.close();
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(50ms);
      auto v = b.recv();
      b.send(v);
    }
  });
  child.start();
  b.close();
  std::atomic<bool> stop{false};
  pthread_t me = ::pthread_self();
  std::thread pester([&] {
    while (!stop) {
      ::pthread_kill(me, SIGUSR1);
      std::this_thread::sleep_for(1ms);
    }
  });
  for (int i = 0; i < 3; ++i) {
    std::vector<char> big(4u << 20, static_cast<char>(i));
    a.send(big);  // larger than the socket buffer: blocks, and is signalled meanwhile
    EXPECT_EQ(a.recv(), big);
  }
  stop = true;
  pester.join();
  ::sigaction(SIGUSR1, &old, nullptr);
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
}
