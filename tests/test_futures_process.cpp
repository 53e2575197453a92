// Futures on the process Pool where workers die: terminate() racing with a task's end, and
// terminate() of many tasks in a row; the pool must stay whole (every worker replaced, no task
// lost but the terminated ones, nothing left behind).
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.hpp"

using namespace std::chrono_literals;

namespace {

int sleep_us(int us) {
  std::this_thread::sleep_for(std::chrono::microseconds(us));
  return us;
}
int sqr(int x) { return x * x; }

}  // namespace

TEST(futures_process, TerminateRacingWithCompletionGivesTheValueOrCancelledError) {
  mproc::Pool pool(2);
  int values = 0;
  int cancelled = 0;
  for (int i = 0; i < 100; ++i) {
    auto f = pool.submit(sleep_us, (i % 10) * 100);
    std::this_thread::sleep_for(std::chrono::microseconds((i % 7) * 150));
    f.terminate();
    try {
      EXPECT_EQ(f.result(10s), (i % 10) * 100);
      ++values;
    } catch (const mproc::CancelledError&) {
      ++cancelled;
    }
  }
  EXPECT_EQ(values + cancelled, 100);
  // The pool is whole: both workers alive, and a map runs on them.
  std::vector<int> xs(1000);
  for (int i = 0; i < 1000; ++i) xs[static_cast<std::size_t>(i)] = i;
  auto squares = pool.map(sqr, xs, 1);
  EXPECT_EQ(squares[999], 999 * 999);
  for (int pid : pool.backend().worker_pids()) EXPECT_NE(pid, 0);
}

TEST(futures_process, TerminatedWorkersOtherChunksRunElsewhere) {
  mproc::Pool pool(2);
  auto long_one = pool.submit(sleep_us, 10'000'000);
  while (!long_one.running()) std::this_thread::sleep_for(1ms);
  // Queued behind it, on whichever worker: none of these may fail.
  std::vector<mproc::Future<int>> others;
  for (int i = 0; i < 50; ++i) others.push_back(pool.submit(sqr, i));
  EXPECT_TRUE(long_one.terminate());
  EXPECT_THROW((void)long_one.result(5s), mproc::CancelledError);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(others[static_cast<std::size_t>(i)].result(5s), i * i);
}
