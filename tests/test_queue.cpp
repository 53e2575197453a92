// Tests of Queue, SimpleQueue and JoinableQueue between processes.
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fork_helper.hpp"
#include "mproc/process.hpp"
#include "mproc/queue.hpp"

using namespace std::chrono_literals;

TEST(queue_Queue, FilledByParentAndChildComesOutFifo) {
  mproc::Queue<int> q;
  for (int i = 0; i < 100; ++i) q.put(i);
  mproc::Process child([q]() mutable {
    for (int i = 100; i < 200; ++i) q.put(i);
  });
  child.start();
  child.join();
  ASSERT_EQ(child.exitcode(), 0);
  EXPECT_EQ(q.qsize(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(q.get(), i);
  EXPECT_TRUE(q.empty());
}

TEST(queue_Queue, StringsAndVectorsBetweenProcesses) {
  mproc::Queue<std::string> to_child;
  mproc::Queue<std::vector<double>> back;
  mproc::Process child([&] {
    for (;;) {
      std::string s = to_child.get(10s);
      if (s.empty()) break;
      back.put(std::vector<double>(s.size(), 1.5));
    }
  });
  child.start();
  for (std::size_t n = 1; n <= 50; ++n) to_child.put(std::string(n * 100, 'x'));
  to_child.put("");
  for (std::size_t n = 1; n <= 50; ++n) EXPECT_EQ(back.get(10s).size(), n * 100);
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
}

TEST(queue_Queue, PutOnFullTimesOutWithFull) {
  mproc::Queue<int> q(2);
  q.put(1);
  q.put_nowait(2);
  EXPECT_TRUE(q.full());
  EXPECT_THROW(q.put_nowait(3), mproc::Full);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(q.put(3, 100ms), mproc::Full);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 95ms);
  EXPECT_LT(took, 1s);
  EXPECT_EQ(q.get(), 1);
  q.put(3, 100ms);
  EXPECT_EQ(q.qsize(), 2u);
}

TEST(queue_Queue, GetOnEmptyThrowsEmpty) {
  mproc::Queue<int> q;
  EXPECT_THROW(q.get_nowait(), mproc::Empty);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(q.get(100ms), mproc::Empty);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 95ms);
  q.close();
  EXPECT_THROW(q.put(1), std::logic_error);
}

TEST(queue_Queue, BlockedGetWokenByChildPut) {
  mproc::Queue<int> q;
  mproc::Process child([q]() mutable {
    std::this_thread::sleep_for(50ms);
    q.put(42);
  });
  child.start();
  EXPECT_EQ(q.get(10s), 42);
  child.join();
}

TEST(queue_Queue, ManyProducersManyConsumers) {
  mproc::Queue<long> q(16);
  mproc::Queue<long> sums;
  std::vector<mproc::Process> ps;
  for (int p = 0; p < 3; ++p)
    ps.emplace_back([q, p]() mutable {
      for (long i = 0; i < 2000; ++i) q.put(p * 100000 + i);
    });
  for (int c = 0; c < 2; ++c)
    ps.emplace_back([q, sums]() mutable {
      long sum = 0;
      for (;;) {
        long v = q.get(10s);
        if (v < 0) break;
        sum += v;
      }
      sums.put(sum);
    });
  for (auto& p : ps) p.start();
  for (int p = 0; p < 3; ++p) ps[static_cast<std::size_t>(p)].join();
  q.put(-1);
  q.put(-1);
  long total = sums.get(10s) + sums.get(10s);
  for (auto& p : ps) p.join();
  long expected = 0;
  for (long p = 0; p < 3; ++p)
    for (long i = 0; i < 2000; ++i) expected += p * 100000 + i;
  EXPECT_EQ(total, expected);
}

TEST(queue_Queue, TooLargeItemFailsThatPutOnly) {
  mproc::Queue<std::string> q(0, 1024);
  EXPECT_THROW(q.put(std::string(4096, 'x')), std::length_error);
  q.put("fine");
  EXPECT_EQ(q.get(), "fine");
}

// A process killed holding the queue's lock between the stores of a get or a put (the test
// hook kills it there) leaves a queue that gives each remaining item once, and counts right.
TEST(queue_Queue, KilledHalfwayThroughGetOrPutLeavesItConsistent) {
  using mproc::detail::QueueStep;
  mproc::Queue<int> q;
  q.put(1);
  q.put(2);
  pid_t pid = mproc::test::fork_child([&] {
    mproc::detail::queue_step_hook = [](QueueStep step) noexcept {
      if (step == QueueStep::get_consumed) ::raise(SIGKILL);
    };
    (void)q.get();
  });
  EXPECT_TRUE(WIFSIGNALED(mproc::test::wait_child(pid)));
  EXPECT_EQ(q.get(1s), 2);
  EXPECT_THROW((void)q.get(100ms), mproc::Empty);
  EXPECT_EQ(q.qsize(), 0u);

  pid = mproc::test::fork_child([&] {
    mproc::detail::queue_step_hook = [](QueueStep step) noexcept {
      if (step == QueueStep::put_published) ::raise(SIGKILL);
    };
    q.put(3);
  });
  EXPECT_TRUE(WIFSIGNALED(mproc::test::wait_child(pid)));
  EXPECT_EQ(q.get(1s), 3);  // it was in the ring: the put took effect
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_THROW((void)q.get(100ms), mproc::Empty);
  q.put(4);
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(q.get(1s), 4);
  EXPECT_TRUE(q.empty());
}

TEST(queue_SimpleQueue, PutGetEmpty) {
  mproc::SimpleQueue<std::string> q;
  EXPECT_TRUE(q.empty());
  q.put("a");
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(q.get(), "a");
}

TEST(queue_JoinableQueue, JoinWaitsForTaskDone) {
  mproc::JoinableQueue<int> q;
  for (int i = 0; i < 10; ++i) q.put(i);
  EXPECT_FALSE(q.join(20ms));
  mproc::Process worker([q]() mutable {
    for (int i = 0; i < 10; ++i) {
      (void)q.get();
      q.task_done();
    }
  });
  worker.start();
  EXPECT_TRUE(q.join(10s));
  worker.join();
  EXPECT_THROW(q.task_done(), std::logic_error);
}
