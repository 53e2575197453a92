// A worker killed by SIGKILL mid-task.
#include <signal.h>
#include <unistd.h>

#include "fault_check.hpp"

TEST(FaultSigkill, WorkerKilledMidTask) {
  mproc::test::expect_worker_lost_then_recovers(
      [](int) {
        ::kill(::getpid(), SIGKILL);
        return 0;
      },
      {SIGKILL, 0});
}

TEST(FaultSigkill, KilledFromOutsideWhileRunning) {
  mproc::Pool pool(2);
  auto r = pool.apply_async(
      [](int ms) {
        ::usleep(static_cast<useconds_t>(ms) * 1000);
        return ms;
      },
      std::tuple{2000});
  ::usleep(100000);
  auto pids = pool.backend().worker_pids();
  for (int pid : pids) ::kill(pid, SIGKILL);
  EXPECT_THROW((void)r.get(std::chrono::seconds(2)), mproc::WorkerLost);
  mproc::test::expect_full_pool_works(pool, 2);
}
