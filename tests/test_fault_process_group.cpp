// A clean process tree: each Pool worker leads its own process group, and a task's child
// processes (here a `sleep 1000` started with posix_spawn) end with their worker when the pool
// ends it or sees it end — killed for its time limit, by terminate(), or by its own crash. This
// process makes itself a subreaper, so that the orphaned children become its own and their end
// can be seen (and reaped: nothing is left behind).
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.hpp"
#include "processes.hpp"

extern char** environ;

using namespace std::chrono_literals;

namespace {

mproc::Value<int>* g_sleep_pid = nullptr;  // made before the pools: shared with their workers

// Starts `sleep 1000` in this worker, says its pid, and waits.
int spawn_sleep_and_wait(int then) {
  pid_t pid = 0;
  char arg0[] = "sleep";
  char arg1[] = "1000";
  char* argv[] = {arg0, arg1, nullptr};
  if (::posix_spawnp(&pid, "sleep", nullptr, nullptr, argv, environ) != 0) return -1;
  g_sleep_pid->set(static_cast<int>(pid));
  if (then == 1) std::abort();
  std::this_thread::sleep_for(30s);
  return 0;
}

int negate(int x) { return -x; }

int wait_for_sleep_pid() {
  for (int i = 0; i < 500 && g_sleep_pid->get() == 0; ++i) std::this_thread::sleep_for(10ms);
  return g_sleep_pid->get();
}

// Waits up to 2 s for pid, an orphan that came to us, to end; true when it ended by SIGKILL.
bool killed(pid_t pid) {
  int status = 0;
  if (mproc::test::reaped_within(pid, 2s, &status)) return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return false;
}

class ProcessGroup : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    g_sleep_pid = &sleep_pid_;
  }
  void TearDown() override { mproc::test::reap_children(2s); }  // a dead worker's orphans
  mproc::Value<int> sleep_pid_{0};
};

}  // namespace

TEST_F(ProcessGroup, ATasksChildDiesWithItsWorkerKilledForItsTimeLimit) {
  {
    mproc::Pool pool(1);
    auto start = std::chrono::steady_clock::now();
    EXPECT_THROW((void)pool.apply(spawn_sleep_and_wait, std::tuple{0}, mproc::TaskTimeout(300ms)), mproc::TimeoutError);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    const int sleep = sleep_pid_.get();
    ASSERT_GT(sleep, 0);
    EXPECT_TRUE(killed(sleep)) << "sleep " << sleep << " outlived its worker";
    EXPECT_EQ(pool.apply(negate, std::tuple{-4}), 4);  // the replacement works
  }
}

TEST_F(ProcessGroup, ATasksChildDiesWithItsWorkerOnTerminate) {
  mproc::Pool pool(2);
  auto r = pool.apply_async(spawn_sleep_and_wait, std::tuple{0});
  const int sleep = wait_for_sleep_pid();
  ASSERT_GT(sleep, 0);
  pool.terminate();
  EXPECT_TRUE(killed(sleep)) << "sleep " << sleep << " outlived terminate()";
  EXPECT_THROW((void)r.get(5s), mproc::PoolNotRunning);
}

TEST_F(ProcessGroup, ATasksChildDiesWithItsWorkerThatCrashed) {
  mproc::Pool pool(1);
  EXPECT_THROW((void)pool.apply(spawn_sleep_and_wait, std::tuple{1}), mproc::WorkerLost);
  const int sleep = sleep_pid_.get();
  ASSERT_GT(sleep, 0);
  EXPECT_TRUE(killed(sleep)) << "sleep " << sleep << " outlived its crashed worker";
}

TEST_F(ProcessGroup, EachWorkerLeadsItsOwnGroup) {
  mproc::Pool pool(3);
  for (int pid : pool.backend().worker_pids()) EXPECT_EQ(::getpgid(pid), pid);
  auto group = [](int) { return static_cast<int>(::getpgid(0)); };
  std::vector<int> xs(30);
  for (int g : pool.map(group, xs, 1)) EXPECT_NE(g, ::getpgid(0));
}
