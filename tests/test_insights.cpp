// Insights and traces (issue 19), on Pool and ThreadPool: the figures add up (busy + idle is the
// time each worker has been up, within 10%), counts equal the tasks run, the slowest tasks are
// found with their positions, and the trace is JSON holding a slice per chunk on the lane of the
// worker that ran it, and a worker's death as an instant event.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mproc/detail/item_clock.hpp"
#include "mproc/mproc.hpp"
#include "pool_types.hpp"

using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// Item 77 is the slow one.
int work(int x) {
  std::this_thread::sleep_for(x == 77 ? 80ms : 1ms);
  return x;
}
int sqr(int x) { return x * x; }
int kill_self_at_3(int x) {
  if (x == 3) ::kill(::getpid(), SIGKILL);
  return x;
}

std::vector<int> numbers(int n) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back(i);
  return v;
}

std::string temp_path() {
  char path[] = "/tmp/mproc_trace_XXXXXX";
  int fd = ::mkstemp(path);
  ::close(fd);
  return path;
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);  // throws on anything that is not JSON
}

}  // namespace

template <class P>
class insights : public ::testing::Test {};
TYPED_TEST_SUITE(insights, PoolTypes, PoolNames);

TYPED_TEST(insights, OffByDefaultAndThenAskingIsAMisuse) {
  TypeParam pool(1);
  (void)pool.map(sqr, numbers(10));
  EXPECT_THROW((void)pool.insights(), std::logic_error);
  EXPECT_THROW(pool.write_trace("/tmp/never_written.json"), std::logic_error);
}

TYPED_TEST(insights, FiguresAddUpAndCountTheTasksRun) {
  TypeParam pool(mproc::PoolOptions{.processes = 2, .insights = true});
  std::this_thread::sleep_for(20ms);  // some idle time before the work
  auto v = pool.map(work, numbers(200), 5);
  ASSERT_EQ(v.size(), 200u);
  std::this_thread::sleep_for(20ms);  // and after
  mproc::Insights s = pool.insights();
  ASSERT_EQ(s.workers.size(), 2u);
  std::size_t tasks = 0, chunks = 0;
  std::chrono::nanoseconds working{0};
  for (const auto& w : s.workers) {
    tasks += w.tasks;
    chunks += w.chunks;
    working += w.working;
    EXPECT_GT(w.pid, 0);
    EXPECT_LE(w.working, w.busy);
    EXPECT_EQ(w.busy, w.working + w.codec);
    // Up since the pool started, less its start-up: busy or waiting all that time.
    const double up = static_cast<double>((s.wall - w.startup).count());
    const double accounted = static_cast<double>((w.busy + w.idle).count());
    // Within 10%, or 50 ms: the parent's and the worker's clocks are read at different moments,
    // which a loaded machine can set tens of ms apart.
    EXPECT_NEAR(accounted, up, std::max(0.10 * up, 50e6)) << "worker " << w.worker;
  }
  EXPECT_GT(working, 250ms);  // the tasks sleep 279 ms in all, however the workers shared them
  EXPECT_EQ(tasks, 200u);
  EXPECT_EQ(chunks, 40u);
  ASSERT_EQ(s.slowest.size(), 5u);
  // Item 77 is among them (a loaded machine may stall another as long: it runs on a shared CPU).
  bool found = false;
  for (const auto& t : s.slowest) {
    EXPECT_EQ(t.kind, "map");
    EXPECT_EQ(t.call, 0u);
    if (t.index == 77) {
      found = true;
      EXPECT_GE(t.took, 75ms);
    }
  }
  EXPECT_TRUE(found);
  for (std::size_t i = 1; i < s.slowest.size(); ++i) EXPECT_GE(s.slowest[i - 1].took, s.slowest[i].took);
  std::ostringstream table;
  table << s;
  EXPECT_NE(table.str().find("working ms"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("slowest tasks"), std::string::npos);
}

TYPED_TEST(insights, EveryCallKindIsNumberedAndNamed) {
  TypeParam pool(mproc::PoolOptions{.processes = 2, .insights = true});
  (void)pool.map(sqr, numbers(20), 4);
  for (int x : pool.imap(sqr, numbers(10), 2)) (void)x;
  std::vector<std::tuple<int>> args{{1}, {2}};
  (void)pool.starmap(sqr, args);
  (void)pool.apply(sqr, std::tuple{3});
  auto path = temp_path();
  pool.write_trace(path);
  json trace = read_json(path);
  std::map<int, std::string> calls;
  std::size_t items = 0;
  for (const auto& e : trace["traceEvents"])
    if (e["ph"] == "X" && e["cat"] == "chunk") {
      calls[e["args"]["call"].get<int>()] = e["name"].get<std::string>();
      items += e["args"]["count"].get<std::size_t>();
    }
  EXPECT_EQ(calls, (std::map<int, std::string>{{0, "map"}, {1, "imap"}, {2, "starmap"}, {3, "apply"}}));
  EXPECT_EQ(items, 33u);
  std::remove(path.c_str());
}

TYPED_TEST(insights, TraceHasALanePerWorkerAndASlicePerChunk) {
  TypeParam pool(mproc::PoolOptions{.processes = 3, .insights = true});
  (void)pool.map(work, numbers(60), 4);
  auto path = temp_path();
  pool.write_trace(path);
  json trace = read_json(path);
  std::remove(path.c_str());
  EXPECT_EQ(trace["displayTimeUnit"], "ms");
  EXPECT_EQ(trace["otherData"]["workers"], 3);
  EXPECT_EQ(trace["otherData"]["mproc_version"], mproc::version());
  EXPECT_EQ(trace["otherData"]["pool"], (std::is_same_v<TypeParam, mproc::Pool> ? "process" : "thread"));
  std::set<int> named_lanes, used_lanes;
  std::set<std::size_t> firsts;
  std::size_t slices = 0;
  for (const auto& e : trace["traceEvents"]) {
    EXPECT_EQ(e["pid"], 1);
    if (e["ph"] == "M" && e["name"] == "thread_name") {
      int tid = e["tid"];
      if (tid > 0) {
        EXPECT_EQ(e["args"]["name"], "worker " + std::to_string(tid - 1));
      }
      named_lanes.insert(tid);
    }
    if (e["ph"] == "X" && e["cat"] == "chunk") {
      ++slices;
      used_lanes.insert(e["tid"].get<int>());
      firsts.insert(e["args"]["first"].get<std::size_t>());
      EXPECT_EQ(e["args"]["count"], 4);
      EXPECT_GE(e["ts"].get<double>(), 0);
      EXPECT_GT(e["dur"].get<double>(), 0);
      EXPECT_GT(e["args"]["worker_pid"].get<int>(), 0);
    }
  }
  EXPECT_EQ(named_lanes, (std::set<int>{0, 1, 2, 3}));
  EXPECT_EQ(slices, 15u);
  EXPECT_EQ(firsts.size(), 15u);  // one slice per chunk, each once
  for (int lane : used_lanes) EXPECT_TRUE(lane >= 1 && lane <= 3);
}

// A worker killed in a task: its death and its replacement are instant events on its lane.
TEST(insights_process, AWorkerDeathIsAnEventInTheTrace) {
  mproc::Pool pool(mproc::PoolOptions{.processes = 2, .insights = true});
  EXPECT_THROW((void)pool.map(kill_self_at_3, numbers(8), 1), mproc::WorkerLost);
  EXPECT_EQ(pool.map(sqr, numbers(4)).size(), 4u);  // the pool goes on, replaced
  auto path = temp_path();
  pool.write_trace(path);
  json trace = read_json(path);
  std::remove(path.c_str());
  int died = 0, replaced = 0;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] != "i") continue;
    EXPECT_EQ(e["s"], "t");
    EXPECT_EQ(e["cat"], "worker");
    EXPECT_GE(e["tid"].get<int>(), 1);
    if (e["name"] == "worker died") {
      ++died;
      EXPECT_EQ(e["args"]["signal"], SIGKILL);
    }
    replaced += e["name"] == "worker replaced";
  }
  EXPECT_EQ(died, 1);
  EXPECT_EQ(replaced, 1);
  EXPECT_EQ(pool.insights().workers[0].restarts + pool.insights().workers[1].restarts, 1);
}

// --- ItemClock: how a worker times the tasks of a chunk (task-level, no pool) -----------------

namespace {

using mproc::detail::ItemClock;

// Busy for at least ns (a sleep would give the CPU away and come back late under load).
void spin_ns(std::int64_t ns) {
  const std::int64_t until = mproc::detail::now_ns() + ns;
  while (mproc::detail::now_ns() < until) {
  }
}

// Runs tasks [0, count) under clock, task i taking ticks(i) on a clock of the test's own (the
// machine's speed and load decide nothing); counts the tasks timed one by one.
template <class TicksOf>
std::size_t run_tasks(ItemClock& clock, std::size_t count, TicksOf ticks) {
  std::uint64_t now = 0;
  std::size_t one_by_one = 0;
  clock.run(
      0, count, [](std::size_t) {},
      [&](std::size_t i) {
        ++one_by_one;
        now += ticks(i);
      },
      [&](std::size_t from, std::size_t end) {
        for (std::size_t i = from; i < end; ++i) now += ticks(i);
      },
      [&] { return now; });
  return one_by_one;
}

constexpr std::uint64_t kShort = ItemClock::kShortTicks / 20;
constexpr std::uint64_t kLong = ItemClock::kShortTicks * 10;

}  // namespace

TEST(ItemClock, ShortTasksAreTimedInBlocksAfterOneWindow) {
  ItemClock clock;
  const std::size_t timed = run_tasks(clock, 5000, [](std::size_t) { return kShort; });
  EXPECT_EQ(timed, ItemClock::kProbe);
  EXPECT_FALSE(clock.each);
  EXPECT_EQ(clock.items, 5000u);
  EXPECT_EQ(clock.work_ticks, 5000 * kShort);
}

// Two tasks of the first window stretched (a preemption, a page fault): still short tasks.
TEST(ItemClock, TwoStretchedTasksInTheWindowDoNotDecide) {
  ItemClock clock;
  const std::size_t timed =
      run_tasks(clock, 2000, [](std::size_t i) { return i == 2 || i == 5 ? 1000 * kLong : kShort; });
  EXPECT_EQ(timed, ItemClock::kProbe);
  EXPECT_FALSE(clock.each);
  // The stretched ones are named first, with their offsets.
  ASSERT_EQ(clock.slow_count, ItemClock::kSlowest);
  EXPECT_EQ(clock.slow[0].ticks, 1000 * kLong);
  std::set<std::uint32_t> named{clock.slow[0].offset, clock.slow[1].offset};
  EXPECT_EQ(named, (std::set<std::uint32_t>{2, 5}));
}

// A third stretched task in the window makes it too few short ones: one more window decides.
TEST(ItemClock, AWindowWithThreeStretchedTasksIsFollowedByAnother) {
  ItemClock clock;
  const std::size_t timed =
      run_tasks(clock, 2000, [](std::size_t i) { return i == 1 || i == 2 || i == 5 ? kLong : kShort; });
  EXPECT_EQ(timed, 2 * ItemClock::kProbe);
  EXPECT_FALSE(clock.each);
}

// On the machine's own clock: tasks that spin 20 us are long however loaded the machine is.
TEST(ItemClock, LongTasksAreTimedOneByOne) {
  ItemClock clock;
  std::size_t timed = 0;
  clock.run(
      0, 40, [](std::size_t) {},
      [&](std::size_t i) {
        ++timed;
        if (i != 7) spin_ns(20'000);
      },
      [](std::size_t, std::size_t) { ADD_FAILURE() << "long tasks were run in a block"; });
  EXPECT_EQ(timed, 40u);
  EXPECT_TRUE(clock.each);
  EXPECT_EQ(clock.slow_count, ItemClock::kSlowest);
  for (const auto& s : clock.slow) EXPECT_NE(s.offset, 7u);
}

// Short tasks, then long ones: two long blocks in a row switch back to one by one, and the
// slowest are named.
TEST(ItemClock, TasksThatTurnLongAreTimedOneByOneAgain) {
  ItemClock clock;
  constexpr std::size_t kShortOnes = 1000;
  const std::size_t timed = run_tasks(clock, kShortOnes + 3 * ItemClock::kBlock,
                                      [](std::size_t i) { return i < kShortOnes ? kShort : kLong + i; });
  EXPECT_TRUE(clock.each);
  // Blocks from task 8 on; those ending past task 1000 are long, and the second of them switches.
  const std::size_t first_long_block_end =
      ItemClock::kProbe + ((kShortOnes - ItemClock::kProbe) / ItemClock::kBlock + 1) * ItemClock::kBlock;
  const std::size_t switched_at = first_long_block_end + ItemClock::kBlock;
  EXPECT_EQ(timed, ItemClock::kProbe + (kShortOnes + 3 * ItemClock::kBlock - switched_at));
  ASSERT_EQ(clock.slow_count, ItemClock::kSlowest);
  for (std::uint32_t k = 0; k < ItemClock::kSlowest; ++k)
    EXPECT_EQ(clock.slow[k].offset, kShortOnes + 3 * ItemClock::kBlock - 1 - k);  // the last, slowest first
}

// One block stretched (a task there took a millisecond) among short ones: still in blocks.
TEST(ItemClock, OneLongBlockDoesNotSwitchBack) {
  ItemClock clock;
  const std::size_t timed = run_tasks(clock, 3000, [](std::size_t i) { return i == 1500 ? 1000 * kLong : kShort; });
  EXPECT_EQ(timed, ItemClock::kProbe);
  EXPECT_FALSE(clock.each);
}

// Ticks convert to ns over the process's span once it is long, else over the chunk's own.
TEST(ItemClock, TicksConvertToNanoseconds) {
  ItemClock clock;
  spin_ns(2'000'000);
  const double scale = clock.ns_per_tick(mproc::detail::now_ns(), mproc::detail::item_ticks());
  EXPECT_GT(scale, 0.05);  // a 20 GHz counter at most
  EXPECT_LT(scale, 10.0);  // a 100 MHz one at least
  const std::uint64_t t0 = mproc::detail::item_ticks();
  const std::int64_t n0 = mproc::detail::now_ns();
  spin_ns(50'000'000);  // long enough that a preemption between two paired reads is within 10%
  const double ns = static_cast<double>(mproc::detail::item_ticks() - t0) * scale;
  const double wall = static_cast<double>(mproc::detail::now_ns() - n0);
  EXPECT_NEAR(ns, wall, 0.1 * wall);
}
