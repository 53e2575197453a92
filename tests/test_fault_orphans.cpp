// No orphans when the program dies: a program (a fork of this test) builds a Pool whose task
// starts `sleep 1000` in its worker, and is then SIGKILLed. Its workers end by themselves
// (PR_SET_PDEATHSIG); the task's `sleep`, in its worker's process group, is ended by the pool's
// guard process, which then exits. Within a second nothing is left. This process makes itself a
// subreaper, so that every orphan becomes its child: their ends can be seen, and reaped.
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.hpp"
#include "processes.hpp"

extern char** environ;

using namespace std::chrono_literals;

namespace {

int spawn_sleep(int) {
  pid_t pid = 0;
  char arg0[] = "sleep";
  char arg1[] = "1000";
  char* argv[] = {arg0, arg1, nullptr};
  return ::posix_spawnp(&pid, "sleep", nullptr, nullptr, argv, environ) == 0 ? pid : -1;
}

// Reaps our children for up to timeout, or until none is left; returns the pids reaped. Then
// kills and reaps what is left, and says so in left.
std::set<pid_t> reap_all(std::chrono::milliseconds timeout, std::set<pid_t>& left) {
  std::set<pid_t> reaped = mproc::test::reap_children(timeout);
  left = mproc::test::children_of();
  for (pid_t p : left) ::kill(p, SIGKILL);
  while (::waitpid(-1, nullptr, 0) > 0) {
  }
  return reaped;
}

struct Told {
  int workers[2];
  int sleep;
};

}  // namespace

TEST(FaultOrphans, TaskChildrenWorkersAndGuardEndWithAKilledProgram) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t program = ::fork();
  ASSERT_GE(program, 0);
  if (program == 0) {
    ::close(fds[0]);
    mproc::Pool pool(2);
    auto pids = pool.backend().worker_pids();
    Told told{{pids[0], pids[1]}, pool.apply(spawn_sleep, std::tuple{0})};
    if (::write(fds[1], &told, sizeof told) != sizeof told) ::_exit(2);
    ::pause();
    ::_exit(0);
  }
  ::close(fds[1]);
  Told told{};
  const bool told_whole = ::read(fds[0], &told, sizeof told) == static_cast<ssize_t>(sizeof told);
  ::close(fds[0]);
  if (!told_whole || told.sleep <= 0) {
    ::kill(program, SIGKILL);  // not left in pause() with its pool
    ::waitpid(program, nullptr, 0);
    FAIL() << (told_whole ? "the task could not start sleep" : "the program did not say what it started");
  }
  // The program's children: its two workers and its pool's guard.
  const std::set<pid_t> kids = mproc::test::children_of(program);
  EXPECT_EQ(kids.size(), 3u);
  for (int w : told.workers) EXPECT_TRUE(kids.count(w)) << "worker " << w << " is not the program's child";

  ASSERT_EQ(::kill(program, SIGKILL), 0);
  std::set<pid_t> left;
  const std::set<pid_t> reaped = reap_all(1000ms, left);
  EXPECT_TRUE(left.empty()) << left.size() << " processes were left a second after the program's death";
  EXPECT_TRUE(reaped.count(program));
  EXPECT_TRUE(reaped.count(told.sleep)) << "the task's sleep " << told.sleep << " outlived the program";
  for (pid_t k : kids) EXPECT_TRUE(reaped.count(k)) << "the program's child " << k << " outlived it";
}

TEST(FaultOrphans, APoolThatEndsReapsItsGuard) {
  {
    mproc::Pool pool(2);
    EXPECT_EQ(mproc::test::children_of().size(), 3u) << "two workers and a guard";
    EXPECT_EQ(pool.apply([](int x) { return x + 1; }, std::tuple{1}), 2);
  }
  EXPECT_TRUE(mproc::test::children_of().empty());
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a child is left to reap";
}
