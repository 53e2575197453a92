// Tests of Queue, SimpleQueue and JoinableQueue between processes.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fork_helper.hpp"
#include "mproc/process.hpp"
#include "mproc/queue.hpp"
#include "mproc/shared_heap.hpp"
#include "queue_support.hpp"

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

// Items past the ring (1 KiB here) and items put while it is full keep their order.
TEST(queue_Queue, ItemsLargerThanTheRingKeepTheirOrder) {
  mproc::Queue<std::string> q(0, 1024);
  std::vector<std::string> put;
  for (std::size_t i = 0; i < 300; ++i) put.push_back(std::string(i * 37 % 5000, static_cast<char>('a' + i % 26)));
  for (const auto& s : put) q.put(s, 10s);
  EXPECT_EQ(q.qsize(), put.size());
  for (const auto& s : put) EXPECT_EQ(q.get(1s), s);
  EXPECT_TRUE(q.empty());
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

// Items of 1 MiB + 8 and 10 MiB cross every kind of queue between processes, 100 MiB a Queue.
TEST(queue_BigItems, CrossQueueSimpleQueueAndJoinableQueue) {
  const std::size_t kSmall = (std::size_t{1} << 20) + 8, kMid = std::size_t{10} << 20, kLarge = std::size_t{100} << 20;
  mproc::Queue<std::string> q;
  mproc::SimpleQueue<std::string> sq;
  mproc::JoinableQueue<std::string> jq;
  mproc::Process child([&] {
    for (std::size_t n : {kSmall, kMid}) {
      std::string item = mproc::test::pattern(n, n);
      q.put(item, 30s);
      sq.put(item);
      jq.put(item, 30s);
    }
    q.put(mproc::test::pattern(kLarge, 1), 30s);
  });
  child.start();
  for (std::size_t n : {kSmall, kMid}) {
    EXPECT_TRUE(mproc::test::is_pattern(q.get(30s), n, n)) << n;
    EXPECT_TRUE(mproc::test::is_pattern(sq.get(), n, n)) << n;
    EXPECT_TRUE(mproc::test::is_pattern(jq.get(30s), n, n)) << n;
    jq.task_done();
  }
  EXPECT_TRUE(jq.join(1s));
  EXPECT_TRUE(mproc::test::is_pattern(q.get(30s), kLarge, 1));
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
}

// Python's order: every task put before any result is read, results read after tasks.join().
TEST(queue_Unbounded, PythonProducerConsumerOrderWith100000Items) {
  constexpr int kItems = 100'000;
  mproc::JoinableQueue<std::string> tasks;
  mproc::Queue<std::string> results;
  std::vector<mproc::Process> consumers;
  for (int c = 0; c < 2; ++c)
    consumers.emplace_back([&] {
      for (;;) {
        std::string task = tasks.get(30s);
        if (task.empty()) {
          tasks.task_done();
          break;
        }
        results.put(task + " done", 30s);
        tasks.task_done();
      }
    });
  for (auto& c : consumers) c.start();
  for (int i = 0; i < kItems; ++i) tasks.put("task number " + std::to_string(i), 30s);
  tasks.put("", 30s);
  tasks.put("", 30s);
  ASSERT_TRUE(tasks.join(50s));
  std::vector<char> seen(kItems, 0);
  for (int i = 0; i < kItems; ++i) {
    std::string r = results.get(1s);
    int n = std::stoi(r.substr(12));
    ASSERT_EQ(r, "task number " + std::to_string(n) + " done");
    seen[static_cast<std::size_t>(n)]++;
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), kItems);
  EXPECT_TRUE(results.empty());
  for (auto& c : consumers) {
    c.join();
    EXPECT_EQ(c.exitcode(), 0);
  }
}

// Nobody reads: an unbounded queue's put() still does not block, items far past the ring.
TEST(queue_Unbounded, PutNeverWaitsForBytes) {
  mproc::Queue<std::string> q(0, 4096);
  for (int i = 0; i < 20'000; ++i) q.put_nowait(std::string(100, 'x') + std::to_string(i));
  q.put_nowait(std::string(std::size_t{3} << 20, 'y'));
  EXPECT_EQ(q.qsize(), 20'001u);
  for (int i = 0; i < 20'000; ++i) ASSERT_EQ(q.get_nowait(), std::string(100, 'x') + std::to_string(i));
  EXPECT_EQ(q.get_nowait().size(), std::size_t{3} << 20);
}

// A bounded queue still says Full by its item count, big items or small.
TEST(queue_Bounded, BigItemsPutNowaitAndTimeoutRaiseFull) {
  mproc::Queue<std::string> q(2, 4096);
  std::string big = mproc::test::pattern(std::size_t{2} << 20, 7);
  q.put(big);
  q.put_nowait("small");
  EXPECT_TRUE(q.full());
  EXPECT_THROW(q.put_nowait(big), mproc::Full);
  EXPECT_THROW(q.put_nowait("x"), mproc::Full);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(q.put(big, 100ms), mproc::Full);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 95ms);
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_EQ(q.get(), big);
  q.put(big, 100ms);
  EXPECT_EQ(q.get(), "small");
  EXPECT_EQ(q.get(), big);
  EXPECT_TRUE(q.empty());
}

// Big items' blocks go back to the heap once taken (the heap keeps or returns their pages, as its
// own tests show), and the queue's ring once the queue is gone.
TEST(queue_BigItems, MemoryComesBackAfterTheyAreTaken) {
  const std::string large = mproc::test::pattern(std::size_t{72} << 20, 1);
  const std::string mid = mproc::test::pattern(std::size_t{24} << 20, 2);
  const std::size_t before = mproc::heap_stats().in_use;
  {
    mproc::Queue<std::string> q;
    for (int i = 0; i < 2; ++i) {
      q.put(large);
      q.put(mid);
      EXPECT_GE(mproc::heap_stats().in_use, before + large.size() + mid.size());
      EXPECT_EQ(q.get(), large);
      EXPECT_EQ(q.get(), mid);
    }
    EXPECT_LE(mproc::heap_stats().in_use, before + (std::size_t{2} << 20));  // the ring and the state
  }
  EXPECT_EQ(mproc::heap_stats().in_use, before);
}

// A queue holds no file descriptor.
TEST(queue_Queue, LeavesNoFileDescriptor) {
  std::size_t fds = mproc::test::open_fds();
  {
    mproc::Queue<std::string> q;
    q.put(std::string(std::size_t{2} << 20, 'z'));
    EXPECT_EQ(q.get().size(), std::size_t{2} << 20);
  }
  EXPECT_EQ(mproc::test::open_fds(), fds);
}

// get_into takes each item into the caller's value, reusing its memory: big items from another
// process arrive whole and in order into one buffer that is not reallocated once big enough.
TEST(queue_GetInto, BigItemsFromAChildReuseOneBuffer) {
  mproc::Queue<std::vector<char>> q;
  const std::size_t big = std::size_t{6} << 20;
  mproc::Process child([q]() mutable {
    for (int i = 0; i < 4; ++i)
      q.put(std::vector<char>(big - static_cast<std::size_t>(i) * 1000, static_cast<char>('a' + i)));
    q.put(std::vector<char>{});
  });
  child.start();
  std::vector<char> into;
  q.get_into(into, 10s);
  ASSERT_EQ(into.size(), big);
  EXPECT_EQ(std::count(into.begin(), into.end(), 'a'), static_cast<long>(big));
  const char* kept = into.data();
  for (int i = 1; i < 4; ++i) {
    q.get_into(into, 10s);
    ASSERT_EQ(into.size(), big - static_cast<std::size_t>(i) * 1000);
    EXPECT_EQ(std::count(into.begin(), into.end(), 'a' + i), static_cast<long>(into.size()));
    EXPECT_EQ(into.data(), kept);
  }
  q.get_into(into, 10s);
  EXPECT_TRUE(into.empty());
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
}

// Small items written straight into the ring (strings and vectors are not encoded first) come
// out exact where the ring wraps, by get and get_into alike.
TEST(queue_GetInto, SmallItemsAcrossTheRingsWrapComeOutExact) {
  mproc::Queue<std::vector<int>> q(0, 1024);
  std::vector<int> into;
  for (int round = 0; round < 200; ++round) {
    std::vector<int> item(static_cast<std::size_t>(round % 29));
    for (std::size_t i = 0; i < item.size(); ++i) item[i] = round * 1000 + static_cast<int>(i);
    q.put(item);
    q.put(item);
    EXPECT_EQ(q.get(), item);
    q.get_into(into);
    EXPECT_EQ(into, item);
  }
  EXPECT_TRUE(q.empty());
}

// get_into with other item types decodes them as get does.
TEST(queue_GetInto, NonSequenceTypesAndSimpleQueue) {
  mproc::Queue<std::vector<std::string>> q;
  std::vector<std::string> into{"old"};
  q.put({"a", std::string(5000, 'b')});
  q.get_into(into);
  EXPECT_EQ(into, (std::vector<std::string>{"a", std::string(5000, 'b')}));
  mproc::SimpleQueue<std::string> sq;
  std::string s;
  sq.put(std::string(std::size_t{1} << 20, 'k'));
  sq.get_into(s);
  EXPECT_EQ(s, std::string(std::size_t{1} << 20, 'k'));
}

// On an empty queue the timeout form throws Empty and leaves the value alone; a closed handle
// refuses.
TEST(queue_GetInto, EmptyTimesOutAndClosedRefuses) {
  mproc::Queue<std::string> q;
  std::string into = "kept";
  EXPECT_THROW(q.get_into(into, 20ms), mproc::Empty);
  EXPECT_EQ(into, "kept");
  q.close();
  EXPECT_THROW(q.get_into(into), std::logic_error);
}
