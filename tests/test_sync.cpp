// Tests of Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition and Barrier across processes.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fork_helper.hpp"
#include "mproc/shared_memory.hpp"
#include "mproc/sync.hpp"
#include "processes.hpp"

using namespace std::chrono_literals;
using mproc::test::exited_ok;
using mproc::test::fork_child;

namespace {

// Whether the child ends with status 0 within limit. A child still running then is killed: a
// call that hangs fails the test in seconds instead of hanging it.
bool exits_ok_within(pid_t pid, std::chrono::milliseconds limit) {
  int status = 0;
  if (mproc::test::reaped_within(pid, limit, &status)) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  ::kill(pid, SIGKILL);
  mproc::test::wait_child(pid);
  return false;
}

// Runs f in a child: whether it ended well within limit.
template <class F>
bool finishes_within(std::chrono::milliseconds limit, F f) {
  return exits_ok_within(fork_child(f), limit);
}

// Blocks until count, read under cv's lock, reaches n: the children that raised it are then
// inside wait(), since they raised it holding the lock that wait() gives up.
void await_waiters(mproc::Condition& cv, mproc::Value<int>& count, int n) {
  for (;;) {
    {
      std::scoped_lock hold(cv);
      if (count.value() >= n) return;
    }
    std::this_thread::sleep_for(1ms);
  }
}

}  // namespace

TEST(sync_Lock, AcquireReleaseAndLocked) {
  mproc::Lock lock;
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(lock.previous_owner_died());
  lock.release();
  EXPECT_FALSE(lock.locked());
  EXPECT_THROW(lock.release(), std::logic_error);
  {
    std::scoped_lock hold(lock);
    EXPECT_TRUE(lock.locked());
  }
  EXPECT_FALSE(lock.locked());
}

// As Python's non-recursive Lock: its holder's acquire(false), try_lock() and acquire(timeout)
// return false (the last after the timeout); only a blocking acquire(), a certain deadlock,
// throws. The lock stays held and usable.
TEST(sync_Lock, HolderAcquiringAgainGetsFalseUnlessBlocking) {
  mproc::Lock lock;
  ASSERT_TRUE(lock.acquire());
  EXPECT_FALSE(lock.acquire(false));
  EXPECT_FALSE(lock.try_lock());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(lock.acquire(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  EXPECT_THROW(lock.acquire(), std::logic_error);
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(lock.try_lock());
  lock.release();
}

TEST(sync_Lock, TimeoutAndNonBlockingAgainstAnotherProcess) {
  mproc::Lock lock;
  mproc::Event held, done;
  pid_t pid = fork_child([&] {
    lock.acquire();
    held.set();
    done.wait(10s);
    lock.release();
  });
  ASSERT_TRUE(held.wait(10s));
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(lock.acquire(false));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(lock.acquire(100ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 90ms);
  done.set();
  EXPECT_TRUE(lock.acquire(10s));
  lock.release();
  EXPECT_TRUE(exited_ok(pid));
}

TEST(sync_Lock, MutualExclusionAcrossProcesses) {
  mproc::Lock lock;
  mproc::Value<long> counter(0);
  std::vector<pid_t> pids;
  for (int i = 0; i < 4; ++i)
    pids.push_back(fork_child([&] {
      for (int k = 0; k < 5000; ++k) {
        std::scoped_lock hold(lock);
        counter.value() = counter.value() + 1;
      }
    }));
  for (pid_t pid : pids) EXPECT_TRUE(exited_ok(pid));
  EXPECT_EQ(counter.get(), 20000);
}

TEST(sync_Lock, HolderDyingDoesNotDeadlock) {
  mproc::Lock lock;
  mproc::Event held;
  pid_t pid = fork_child([&] {
    lock.acquire();
    held.set();
    ::pause();  // killed while holding the lock
  });
  ASSERT_TRUE(held.wait(10s));
  ::kill(pid, SIGKILL);
  mproc::test::wait_child(pid);
  ASSERT_TRUE(lock.acquire(5s));
  EXPECT_TRUE(lock.previous_owner_died());
  lock.release();
  ASSERT_TRUE(lock.acquire(5s));
  EXPECT_FALSE(lock.previous_owner_died());
  lock.release();
}

TEST(sync_RLock, Reentrant) {
  mproc::RLock lock;
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.acquire());
  lock.release();
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_FALSE(lock.locked());
  EXPECT_THROW(lock.release(), std::logic_error);
}

TEST(sync_Semaphore, CountsAndTimesOut) {
  mproc::Semaphore s(2);
  EXPECT_TRUE(s.acquire());
  EXPECT_TRUE(s.acquire(false));
  EXPECT_FALSE(s.acquire(false));
  EXPECT_FALSE(s.acquire(50ms));
  EXPECT_EQ(s.get_value(), 0u);
  pid_t pid = fork_child([&] { s.release(); });
  EXPECT_TRUE(s.acquire(10s));
  EXPECT_TRUE(exited_ok(pid));
}

TEST(sync_BoundedSemaphore, ReleasePastStartThrows) {
  mproc::BoundedSemaphore s(1);
  EXPECT_THROW(s.release(), std::logic_error);
  s.acquire();
  s.release();
  EXPECT_EQ(s.get_value(), 1u);
}

TEST(sync_Event, SetByChildWakesParentWaitingWithTimeout) {
  mproc::Event e;
  EXPECT_FALSE(e.is_set());
  EXPECT_FALSE(e.wait(20ms));
  pid_t pid = fork_child([&] {
    std::this_thread::sleep_for(50ms);
    e.set();
  });
  EXPECT_TRUE(e.wait(10s));
  EXPECT_TRUE(e.is_set());
  e.clear();
  EXPECT_FALSE(e.is_set());
  EXPECT_TRUE(exited_ok(pid));
}

TEST(sync_Condition, NotifyTwoWakesExactlyTwoOfSix) {
  mproc::Condition cv;
  mproc::Value<int> waiting(0), woken(0);
  std::vector<pid_t> pids;
  for (int i = 0; i < 6; ++i)
    pids.push_back(fork_child([&] {
      std::scoped_lock hold(cv);
      waiting.value() += 1;
      if (cv.wait(3s)) woken.value() += 1;
    }));
  // Wait for all six to be inside wait().
  for (;;) {
    {
      std::scoped_lock hold(cv);
      if (waiting.value() == 6) break;
    }
    std::this_thread::sleep_for(1ms);
  }
  {
    std::scoped_lock hold(cv);
    cv.notify(2);
  }
  std::this_thread::sleep_for(300ms);
  {
    std::scoped_lock hold(cv);
    EXPECT_EQ(woken.value(), 2);
    cv.notify_all();
  }
  for (pid_t pid : pids) EXPECT_TRUE(exited_ok(pid));
  EXPECT_EQ(woken.value(), 6);
}

TEST(sync_Condition, WaitForPredicate) {
  mproc::Lock lock;
  mproc::Condition cv(lock);
  mproc::Value<int> x(0);
  pid_t pid = fork_child([&] {
    std::this_thread::sleep_for(20ms);
    std::scoped_lock hold(cv);
    x.value() = 7;
    cv.notify_all();
  });
  {
    std::scoped_lock hold(cv);
    EXPECT_TRUE(cv.wait_for([&] { return x.value() == 7; }, 10s));
    EXPECT_FALSE(cv.wait_for([&] { return x.value() == 8; }, 20ms));
  }
  EXPECT_TRUE(exited_ok(pid));
}

TEST(sync_Condition, WaitWithoutTheLockThrowsAndLeavesItUsable) {
  mproc::Condition cv;
  EXPECT_THROW(cv.wait(), std::logic_error);
  EXPECT_THROW(cv.wait(10ms), std::logic_error);
  EXPECT_TRUE(finishes_within(5s, [&] {
    cv.notify();
    cv.notify_all();
  })) << "notify() blocked after a wait() without the lock";
  mproc::Value<int> waiting(0);
  pid_t pid = fork_child([&] {
    std::scoped_lock hold(cv);
    waiting.value() = 1;
    if (!cv.wait(10s)) throw std::runtime_error("not notified");
  });
  await_waiters(cv, waiting, 1);
  EXPECT_TRUE(finishes_within(5s, [&] {
    std::scoped_lock hold(cv);
    cv.notify();
  })) << "notify() blocked";
  EXPECT_TRUE(exits_ok_within(pid, 5s)) << "the waiter was not woken";
}

TEST(sync_Condition, WaiterKilledWhileWaitingDoesNotWedgeNotify) {
  mproc::Condition cv;
  mproc::Value<int> waiting(0), woken(0);
  pid_t doomed = fork_child([&] {
    std::scoped_lock hold(cv);
    waiting.value() += 1;
    cv.wait();
  });
  await_waiters(cv, waiting, 1);
  ::kill(doomed, SIGKILL);
  mproc::test::wait_child(doomed);
  // Nobody alive waits: notify() must return at once.
  EXPECT_TRUE(finishes_within(5s, [&] {
    std::scoped_lock hold(cv);
    cv.notify();
  })) << "notify() waited for a dead waiter";
  // A second dead waiter, then a live one: notify(1) must wake the live one, not spend itself
  // on the dead.
  doomed = fork_child([&] {
    std::scoped_lock hold(cv);
    waiting.value() += 1;
    cv.wait();
  });
  await_waiters(cv, waiting, 2);
  ::kill(doomed, SIGKILL);
  mproc::test::wait_child(doomed);
  pid_t live = fork_child([&] {
    std::scoped_lock hold(cv);
    waiting.value() += 1;
    if (cv.wait(10s)) woken.value() += 1;
  });
  await_waiters(cv, waiting, 3);
  EXPECT_TRUE(finishes_within(5s, [&] {
    std::scoped_lock hold(cv);
    cv.notify(1);
  })) << "notify(1) waited for a dead waiter";
  EXPECT_TRUE(exits_ok_within(live, 5s)) << "notify(1) did not wake the live waiter";
  EXPECT_EQ(woken.get(), 1);
  EXPECT_TRUE(finishes_within(5s, [&] {
    std::scoped_lock hold(cv);
    cv.notify_all();
  })) << "notify_all() waited for a dead waiter";
}

TEST(sync_Condition, MoreWaitersThanSlotsAllWakeOnNotifyAll) {
  constexpr int kWaiters = 150;  // more than the 128 a Condition tracks one by one
  mproc::Condition cv;
  mproc::Value<int> waiting(0);
  std::atomic<int> woken{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i)
    threads.emplace_back([&] {
      std::scoped_lock hold(cv);
      waiting.value() += 1;
      if (cv.wait(10s)) woken += 1;
    });
  await_waiters(cv, waiting, kWaiters);
  {
    std::scoped_lock hold(cv);
    cv.notify(1);
  }
  for (;;) {
    {
      std::scoped_lock hold(cv);
      if (woken.load() >= 1) break;
    }
    std::this_thread::sleep_for(1ms);
  }
  std::this_thread::sleep_for(50ms);
  {
    std::scoped_lock hold(cv);
    EXPECT_EQ(woken.load(), 1);  // tracked waiters were there to take it: the rest sleep on
    cv.notify_all();
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(woken.load(), kWaiters);
}

TEST(sync_Barrier, FiveProcessesInLockstepThousandTimes) {
  constexpr int kParties = 5, kRounds = 1000;
  mproc::Barrier bar(kParties);
  mproc::Array<int> round(kParties);
  mproc::Value<int> errors(0);
  auto body = [&](int me) {
    for (int r = 0; r < kRounds; ++r) {
      round[static_cast<std::size_t>(me)] = r;
      bar.wait();
      for (int other = 0; other < kParties; ++other) {
        int seen = round[static_cast<std::size_t>(other)];
        if (seen != r && seen != r + 1) {
          std::scoped_lock hold(errors.get_lock());
          errors.value() += 1;
        }
      }
      bar.wait();
    }
  };
  std::vector<pid_t> pids;
  for (int i = 1; i < kParties; ++i) pids.push_back(fork_child([&, i] { body(i); }));
  body(0);
  for (pid_t pid : pids) EXPECT_TRUE(exited_ok(pid));
  EXPECT_EQ(errors.get(), 0);
  EXPECT_EQ(bar.n_waiting(), 0u);
}

TEST(sync_Barrier, IndicesAbortAndReset) {
  mproc::Barrier bar(2);
  EXPECT_EQ(bar.parties(), 2u);
  mproc::Value<unsigned> child_index(99);
  pid_t pid = fork_child([&] { child_index.set(bar.wait()); });
  unsigned mine = bar.wait();
  EXPECT_TRUE(exited_ok(pid));
  EXPECT_EQ(mine + child_index.get(), 1u);
  EXPECT_THROW(bar.wait(50ms), mproc::BrokenBarrierError);
  EXPECT_TRUE(bar.broken());
  EXPECT_THROW(bar.wait(), mproc::BrokenBarrierError);
  bar.reset();
  EXPECT_FALSE(bar.broken());
  pid = fork_child([&] {
    std::this_thread::sleep_for(30ms);
    bar.abort();
  });
  EXPECT_THROW(bar.wait(10s), mproc::BrokenBarrierError);
  EXPECT_TRUE(exited_ok(pid));
}
