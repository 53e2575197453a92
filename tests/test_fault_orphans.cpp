// No orphans when the program dies: a program (a fork of this test) builds a Pool whose task
// starts `sleep 1000` in its worker, and is then SIGKILLed. Its workers end by themselves
// (PR_SET_PDEATHSIG); the task's `sleep`, in its worker's process group, is ended by the
// program's guard process, which then exits. Within a second nothing is left. This process makes
// itself a subreaper, so that every orphan becomes its child (the guard at once: it is no one's
// child from its start): their ends can be seen, and reaped.
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/detail/process_backend.hpp"
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

// Whether pid runs (neither gone nor a zombie), from /proc/<pid>/stat's state after "(comm) ".
bool running(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

struct Told {
  int workers[2];
  int sleep;
  int guard;
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
    Told told{{pids[0], pids[1]}, pool.apply(spawn_sleep, std::tuple{0}), mproc::detail::program_guard_pid()};
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
  // The program's children: its two workers. Its guard is no one's child, so it came to us.
  const std::set<pid_t> kids = mproc::test::children_of(program);
  EXPECT_EQ(kids.size(), 2u);
  for (int w : told.workers) EXPECT_TRUE(kids.count(w)) << "worker " << w << " is not the program's child";
  EXPECT_TRUE(mproc::test::children_of().count(told.guard)) << "the program's guard " << told.guard << " is not ours";

  ASSERT_EQ(::kill(program, SIGKILL), 0);
  std::set<pid_t> left;
  const std::set<pid_t> reaped = reap_all(1000ms, left);
  EXPECT_TRUE(left.empty()) << left.size() << " processes were left a second after the program's death";
  EXPECT_TRUE(reaped.count(program));
  EXPECT_TRUE(reaped.count(told.sleep)) << "the task's sleep " << told.sleep << " outlived the program";
  for (pid_t k : kids) EXPECT_TRUE(reaped.count(k)) << "the program's child " << k << " outlived it";
  EXPECT_TRUE(reaped.count(told.guard)) << "the program's guard " << told.guard << " outlived it";
}

// The first pool makes the program's guard, which is no one's child: a pool that ends leaves no
// child to reap, and the guard, still running, serves the next pool.
TEST(FaultOrphans, OneGuardServesEveryPoolAndIsNoOnesChild) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 0), 0);  // as in a program that is not one
  EXPECT_EQ(mproc::detail::program_guard_pid(), 0) << "a guard before the first pool";
  pid_t guard = 0;
  {
    mproc::Pool pool(2);
    EXPECT_EQ(mproc::test::children_of().size(), 2u) << "two workers";
    guard = mproc::detail::program_guard_pid();
    ASSERT_GT(guard, 0);
    EXPECT_EQ(pool.apply([](int x) { return x + 1; }, std::tuple{1}), 2);
  }
  EXPECT_TRUE(mproc::test::children_of().empty());
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a child is left to reap";
  EXPECT_TRUE(running(guard)) << "the guard ended with the pool";
  mproc::Pool next(1);
  EXPECT_EQ(next.apply([](int x) { return x + 1; }, std::tuple{2}), 3);
  EXPECT_EQ(mproc::detail::program_guard_pid(), guard) << "the next pool made another guard";
}

// A child forked by hand (no Process: fork() itself) forgets its parent's guard, whose memory it
// does not have, and its first pool makes its own; the parent's guard goes on and serves its next
// pool. The fork comes after the parent's pool has ended, when the parent runs one thread: after a
// fork from several, only async-signal-safe calls are safe in the child (a sanitizer's allocator
// may be locked by a thread that is not there).
TEST(FaultOrphans, AChildForkedByHandMakesItsOwnGuard) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
  {
    mproc::Pool first(1);
    EXPECT_EQ(first.apply([](int x) { return x + 1; }, std::tuple{1}), 2);
  }
  const pid_t guard = mproc::detail::program_guard_pid();
  ASSERT_GT(guard, 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = mproc::detail::program_guard_pid() == 0 ? 0 : 1;
    {
      mproc::Pool own(1);
      if (own.apply([](int x) { return x * 3; }, std::tuple{5}) != 15) code |= 2;
      const pid_t own_guard = mproc::detail::program_guard_pid();
      if (own_guard <= 0 || own_guard == guard) code |= 4;
    }
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status) & 1, 0) << "the child still had its parent's guard";
  EXPECT_EQ(WEXITSTATUS(status) & 2, 0) << "the child's pool did not work";
  EXPECT_EQ(WEXITSTATUS(status) & 4, 0) << "the child's pool made no guard of its own";
  EXPECT_TRUE(running(guard));
  mproc::Pool next(1);
  EXPECT_EQ(next.apply([](int x) { return x + 1; }, std::tuple{41}), 42);
  EXPECT_EQ(mproc::detail::program_guard_pid(), guard);
}
