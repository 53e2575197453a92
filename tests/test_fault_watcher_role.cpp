// The watcher reads a dead worker's last results holding the collecting role, which the result
// thread (or a waiting caller) holds while it reads results. While results keep coming, a holder
// that releases the role and retakes it at once must still let the watcher have it: else the
// lost task's WorkerLost, the dead worker's replacement and join() wait as long as results come
// (a get(10 s) timed out, and a destructor hung, in the crash soak on a loaded machine).
//
// Forced here: the role's holder is slowed to one result every 2 ms (result_read_hook, as a
// loaded machine would slow it), so a busy worker keeps results waiting in its ring, and the
// holder always finds another; meanwhile the other worker kills itself.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <numeric>
#include <thread>
#include <vector>

#include "backend/process/collect.hpp"
#include "fault_check.hpp"

using namespace std::chrono_literals;

namespace {

int kill_own_worker(int) {
  ::kill(::getpid(), SIGKILL);
  return 0;
}

void slow_reader() noexcept { std::this_thread::sleep_for(2ms); }

// Resets the hook however the test ends.
struct SlowReads {
  SlowReads() { mproc::detail::result_read_hook = slow_reader; }
  ~SlowReads() { mproc::detail::result_read_hook = nullptr; }
  SlowReads(const SlowReads&) = delete;
  SlowReads& operator=(const SlowReads&) = delete;
};

}  // namespace

TEST(FaultWatcherRole, AWorkerLostIsReportedWhileResultsKeepComing) {
  std::vector<int> in(20000);  // at 2 ms a result, 40 s of results: longer than the test's timeout
  std::iota(in.begin(), in.end(), 0);
  mproc::Pool pool(2);
  std::optional<SlowReads> slow(std::in_place);
  auto lost = pool.apply_async(kill_own_worker, std::tuple{0});  // first: to an idle worker
  auto stream = pool.map_async(mproc::test::square, in, 1);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW((void)lost.get(5s), mproc::WorkerLost);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  slow.reset();
  auto out = stream.get(30s);  // the dead worker's queued chunks ran elsewhere
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], in[i] * in[i]) << "item " << i;
  mproc::test::expect_full_pool_works(pool, 2);
}

// A caller collecting for itself stops at its deadline even while other jobs' results keep
// coming, and hands the role to the watcher when it asks.
TEST(FaultWatcherRole, ACallerCollectingStopsAtItsDeadline) {
  std::vector<int> in(20000);
  std::iota(in.begin(), in.end(), 0);
  mproc::Pool pool(1);
  std::optional<SlowReads> slow(std::in_place);
  auto stream = pool.map_async(mproc::test::square, in, 1);
  auto last = pool.apply_async(mproc::test::square, std::tuple{7});  // after the whole stream
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW((void)last.get(500ms), mproc::TimeoutError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << "the caller kept collecting past its deadline";
  slow.reset();
  EXPECT_EQ(last.get(30s), 49);
  EXPECT_EQ(stream.get(30s).size(), in.size());
}
