// worker_id() and a worker's name: each live worker of a Pool has its own number in
// 0..processes-1, kept across its tasks and handed to its replacement; ThreadPool threads have
// theirs; everywhere else it is nullopt.
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.hpp"

namespace {

// What worker_id() says in a Process started from here: -1 for nullopt.
int worker_id_in_a_new_process(int) {
  mproc::Value<int> seen(-2);
  mproc::Process p([seen]() mutable {
    auto id = mproc::worker_id();
    seen.set(id ? static_cast<int>(*id) : -1);
  });
  p.start();
  p.join();
  return seen.get();
}

struct Seen {
  int id = -1;  // -1: nullopt
  int pid = 0;
  std::string name;
  int parent = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, pid, name, parent);
  }
};

Seen who(int) {
  auto id = mproc::worker_id();
  auto parent = mproc::parent_process();
  return Seen{id ? static_cast<int>(*id) : -1, static_cast<int>(::getpid()), mproc::current_process().name(),
              parent ? static_cast<int>(parent->pid()) : 0};
}

Seen slow_who(int x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return who(x);
}

[[noreturn]] int die(int) { ::_exit(3); }

}  // namespace

TEST(WorkerId, EachLiveWorkerHasItsOwnNumberKeptAcrossItsTasks) {
  mproc::Pool pool(3);
  std::vector<int> xs(60);
  auto seen = pool.map(slow_who, xs, 1);
  std::map<int, int> id_of_pid;
  std::map<int, int> pid_of_id;
  for (const Seen& s : seen) {
    ASSERT_GE(s.id, 0);
    ASSERT_LT(s.id, 3);
    EXPECT_EQ(s.name, "PoolWorker-" + std::to_string(s.id));
    EXPECT_EQ(s.parent, ::getpid());
    auto [it, fresh] = id_of_pid.emplace(s.pid, s.id);
    EXPECT_EQ(it->second, s.id) << "a worker's number changed between its tasks";
    auto [jt, fresh2] = pid_of_id.emplace(s.id, s.pid);
    EXPECT_EQ(jt->second, s.pid) << "two live workers share number " << s.id;
  }
  auto pids = pool.backend().worker_pids();
  for (auto [pid, id] : id_of_pid) EXPECT_EQ(pids[static_cast<std::size_t>(id)], pid);
}

TEST(WorkerId, AReplacementTakesItsPredecessorsNumber) {
  mproc::Pool pool(mproc::PoolOptions{.processes = 2, .maxtasksperchild = 1});
  std::vector<int> xs(20);
  std::set<int> pids;
  for (const Seen& s : pool.map(who, xs, 1)) {
    EXPECT_TRUE(s.id == 0 || s.id == 1) << s.id;
    pids.insert(s.pid);
  }
  EXPECT_EQ(pids.size(), 20U);  // a new worker for each task, each numbered 0 or 1

  // A worker that dies: its replacement has its number and slot.
  mproc::Pool crashing(2);
  auto before = crashing.backend().worker_pids();
  EXPECT_THROW((void)crashing.apply(die, std::tuple{0}), mproc::WorkerLost);
  auto after = crashing.backend().worker_pids();
  for (int i = 0; i < 50; ++i) {
    Seen s = crashing.apply(who, std::tuple{0});
    ASSERT_TRUE(s.id == 0 || s.id == 1);
    after = crashing.backend().worker_pids();
    EXPECT_EQ(after[static_cast<std::size_t>(s.id)], s.pid);
  }
  EXPECT_NE(before, after);
}

TEST(WorkerId, NulloptOutsideAnyWorker) {
  EXPECT_FALSE(mproc::worker_id().has_value());
  EXPECT_EQ(mproc::current_process().name(), "MainProcess");
  EXPECT_EQ(worker_id_in_a_new_process(0), -1);
}

TEST(WorkerId, AProcessStartedByATaskIsNoWorker) {
  mproc::Pool pool(1);
  EXPECT_EQ(pool.apply(worker_id_in_a_new_process, std::tuple{0}), -1);
}

TEST(WorkerId, ThreadPoolThreadsHaveTheirNumbers) {
  mproc::ThreadPool pool(3);
  std::vector<int> xs(60);
  auto seen = pool.map(
      [](int) {
        auto id = mproc::worker_id();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return std::pair{id ? static_cast<int>(*id) : -1, std::this_thread::get_id()};
      },
      xs, 1);
  std::map<std::thread::id, int> id_of_thread;
  for (auto [id, thread] : seen) {
    ASSERT_GE(id, 0);
    ASSERT_LT(id, 3);
    auto [it, fresh] = id_of_thread.emplace(thread, id);
    EXPECT_EQ(it->second, id);
  }
  EXPECT_FALSE(mproc::worker_id().has_value());
}
