// A program that builds a Pool and is then SIGKILLed: no worker survives it (within a second),
// and /dev/shm holds nothing new. This process makes itself a subreaper, so the orphaned
// workers (and the program's guard process) become its children and their exits can be observed.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gmock/gmock.h>

#include "fault_check.hpp"
#include "leak_check.hpp"

namespace {

void run_parent_and_kill_it(bool busy) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  auto shm_before = mproc::test::shm_entries();
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t parent = ::fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    ::close(fds[0]);
    {
      mproc::Pool pool(3);
      auto pids = pool.backend().worker_pids();
      if (busy)
        for (int i = 0; i < 3; ++i)
          (void)pool.apply_async(
              [](int) {
                ::sleep(30);
                return 0;
              },
              std::tuple{0});
      if (::write(fds[1], pids.data(), pids.size() * sizeof(int)) < 0) ::_exit(2);
      ::pause();
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  int pids[3] = {};
  ASSERT_EQ(::read(fds[0], pids, sizeof pids), static_cast<ssize_t>(sizeof pids));
  ::close(fds[0]);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::kill(parent, SIGKILL);
  ASSERT_EQ(::waitpid(parent, nullptr, 0), parent);
  for (int pid : pids)
    EXPECT_TRUE(mproc::test::reaped_within(pid, std::chrono::milliseconds(1000))) << "worker " << pid << " survived";
  // The program's guard process came to us too: it exits once it has killed the workers' groups.
  EXPECT_TRUE(mproc::test::reaped_within(-1, std::chrono::milliseconds(1000))) << "the program's guard survived";
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a process is left";
  EXPECT_THAT(mproc::test::new_shm_entries(shm_before), ::testing::IsEmpty());
}

}  // namespace

TEST(FaultParentDeath, IdleWorkersEndWithTheirParent) { run_parent_and_kill_it(false); }
TEST(FaultParentDeath, BusyWorkersEndWithTheirParent) { run_parent_and_kill_it(true); }
