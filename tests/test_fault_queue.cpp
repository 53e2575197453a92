// Queues whose writer or reader is SIGKILLed halfway through an item (the test hook kills it at
// the chosen step): the queue goes on, losing at most that item, and counts right.
#include <signal.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "fork_helper.hpp"
#include "mproc/queue.hpp"
#include "queue_support.hpp"

using namespace std::chrono_literals;
using mproc::detail::QueueStep;

namespace {

const std::size_t kBig = std::size_t{10} << 20;

// Runs f in a child that SIGKILLs itself when the queue reaches step; expects it killed.
template <class F>
void killed_at(QueueStep step, F f) {
  static QueueStep at;
  at = step;
  pid_t pid = mproc::test::fork_child([&] {
    mproc::detail::queue_step_hook = [](QueueStep s) noexcept {
      if (s == at) ::raise(SIGKILL);
    };
    f();
  });
  int status = mproc::test::wait_child(pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

// The queue still carries big and small items both ways after the kill.
void still_works(mproc::Queue<std::string>& q) {
  q.put(mproc::test::pattern(kBig, 9));
  q.put("small");
  pid_t pid = mproc::test::fork_child([&] {
    if (!mproc::test::is_pattern(q.get(5s), kBig, 9) || q.get(5s) != "small") ::_exit(3);
    q.put(mproc::test::pattern(kBig, 10));
  });
  int status = mproc::test::wait_child(pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(mproc::test::is_pattern(q.get(5s), kBig, 10));
  EXPECT_THROW((void)q.get(50ms), mproc::Empty);
  EXPECT_EQ(q.qsize(), 0u);
}

}  // namespace

TEST(FaultQueue, WriterKilledHalfwayThroughABigItemLosesThatItemOnly) {
  mproc::Queue<std::string> q;
  q.put("before");
  killed_at(QueueStep::payload_copying, [&] { q.put(mproc::test::pattern(kBig, 1)); });
  q.put("after");
  EXPECT_EQ(q.get(1s), "before");
  EXPECT_EQ(q.get(1s), "after");
  still_works(q);
}

TEST(FaultQueue, ReaderKilledHalfwayThroughABigItemLosesThatItemOnly) {
  mproc::Queue<std::string> q;
  q.put(mproc::test::pattern(kBig, 1));
  q.put("after");
  killed_at(QueueStep::payload_copying, [&] { (void)q.get(); });
  EXPECT_EQ(q.get(1s), "after");
  EXPECT_EQ(q.qsize(), 0u);
  still_works(q);
}

// Killed holding the lock, a big item just referred to from the ring or taken from it: the put
// took effect, the get did not, and the blocks are accounted for after.
TEST(FaultQueue, KilledHoldingTheLockAroundABigItem) {
  mproc::Queue<std::string> q;
  killed_at(QueueStep::put_published, [&] { q.put(mproc::test::pattern(kBig, 2)); });
  q.put("marker");  // the first to lock after the kill repairs the count
  EXPECT_EQ(q.qsize(), 2u);
  killed_at(QueueStep::get_consumed, [&] { (void)q.get(); });
  EXPECT_EQ(q.get(1s), "marker");
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_THROW((void)q.get(50ms), mproc::Empty);
  still_works(q);
}

// The same with the ring full, so that items go through the overflow list. A get killed after
// taking its item loses it; the ring holds at most the first 12 items (of 80 bytes or more in
// 1 KiB), so the third killed get takes from the list.
TEST(FaultQueue, KilledHoldingTheLockAroundTheOverflowList) {
  mproc::Queue<std::string> q(0, 1024);
  auto item = [](int i) { return "item " + std::to_string(i) + std::string(70, '.'); };
  for (int i = 0; i < 40; ++i) q.put(item(i));
  killed_at(QueueStep::put_published, [&] { q.put("the last"); });
  killed_at(QueueStep::get_consumed, [&] { (void)q.get(); });
  killed_at(QueueStep::get_consumed, [&] { (void)q.get(); });
  EXPECT_EQ(q.get(1s), item(2));  // the first to lock after the kill repairs the count
  EXPECT_EQ(q.qsize(), 38u);
  for (int i = 3; i < 12; ++i) EXPECT_EQ(q.get(1s), item(i));
  killed_at(QueueStep::get_consumed, [&] { (void)q.get(); });
  EXPECT_EQ(q.get(1s), item(13));
  EXPECT_EQ(q.qsize(), 27u);
  for (int i = 14; i < 40; ++i) EXPECT_EQ(q.get(1s), item(i));
  EXPECT_EQ(q.get(1s), "the last");
  still_works(q);
}

// A putter killed between publishing its item and counting it: the item counts as unfinished.
TEST(FaultQueue, JoinableQueueCountsAPutterKilledAfterPublishing) {
  mproc::JoinableQueue<std::string> q;
  q.put("one");
  killed_at(QueueStep::put_published, [&] { q.put("two"); });
  killed_at(QueueStep::put_published, [&] { q.put(mproc::test::pattern(kBig, 3)); });
  EXPECT_EQ(q.get(1s), "one");
  EXPECT_EQ(q.get(1s), "two");
  EXPECT_TRUE(mproc::test::is_pattern(q.get(1s), kBig, 3));
  q.task_done();
  q.task_done();
  EXPECT_FALSE(q.join(50ms));
  q.task_done();
  EXPECT_TRUE(q.join(1s));
  EXPECT_THROW(q.task_done(), std::logic_error);
}
