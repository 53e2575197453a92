// A soak: 2000 tasks of which a random 10% kill their own worker. Every other result is
// correct, nothing hangs, and the number of workers stays what it was.
#include <signal.h>
#include <unistd.h>

#include <random>

#include "fault_check.hpp"

namespace {
int maybe_die(int x, bool die) {
  if (die) ::kill(::getpid(), SIGKILL);
  return x * 3;
}
}  // namespace

TEST(FaultSoak, TenPercentOfTasksKillTheirWorker) {
  mproc::Pool pool(2);
  std::mt19937 gen(20261124);
  std::vector<bool> dies(2000);
  std::vector<mproc::AsyncResult<int>> results;
  for (int i = 0; i < 2000; ++i) {
    dies[static_cast<std::size_t>(i)] = gen() % 10 == 0;
    results.push_back(pool.apply_async(maybe_die, std::tuple{i, bool(dies[static_cast<std::size_t>(i)])}));
  }
  int lost = 0;
  for (int i = 0; i < 2000; ++i) {
    auto& r = results[static_cast<std::size_t>(i)];
    if (dies[static_cast<std::size_t>(i)]) {
      EXPECT_THROW((void)r.get(std::chrono::seconds(10)), mproc::WorkerLost) << "task " << i;
      ++lost;
    } else {
      EXPECT_EQ(r.get(std::chrono::seconds(10)), i * 3) << "task " << i;
    }
  }
  EXPECT_GT(lost, 100);
  mproc::test::expect_full_pool_works(pool, 2);
}
