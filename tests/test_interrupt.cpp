// Ctrl-C: where the program installed a SIGINT handler, a blocking get, map or join is
// interrupted with mproc::Interrupted (and the program's handler still runs); where it did not,
// SIGINT ends the program as usual, its workers with it, and no worker prints a report.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory_resource>
#include <ranges>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.hpp"
#include "processes.hpp"
#include "task_counts.hpp"

using namespace std::chrono_literals;

namespace {

std::atomic<int> handled{0};
void on_sigint(int) { handled.fetch_add(1); }

int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

using mproc::test::sleep_counted;

int sleep_row(const std::pmr::vector<int>& row) { return sleep_counted(row[0]); }

// Whether pid has ended (gone, or a zombie not yet reaped) within timeout.
bool gone_within(pid_t pid, std::chrono::milliseconds timeout) {
  for (auto deadline = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < deadline;) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (::kill(pid, 0) != 0 || !std::getline(stat, line) || line.find(") Z") != std::string::npos) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// Sends SIGINT to this process after a delay, from another thread.
std::thread interrupt_after(std::chrono::milliseconds delay) {
  return std::thread([delay] {
    std::this_thread::sleep_for(delay);
    ::kill(::getpid(), SIGINT);
  });
}

class Interrupt : public ::testing::Test {
 protected:
  void SetUp() override {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    ASSERT_EQ(::sigaction(SIGINT, &sa, &previous_), 0);
    handled = 0;
  }
  void TearDown() override { ::sigaction(SIGINT, &previous_, nullptr); }
  struct sigaction previous_ {};
};

}  // namespace

TEST_F(Interrupt, GetIsInterruptedAndTheProgramsHandlerRuns) {
  mproc::Pool pool(2);
  auto r = pool.apply_async(sleep_ms, std::tuple{5000});
  auto sender = interrupt_after(100ms);
  auto start = std::chrono::steady_clock::now();
  EXPECT_THROW((void)r.get(), mproc::Interrupted);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  sender.join();
  EXPECT_EQ(handled.load(), 1);
  pool.terminate();
}

TEST_F(Interrupt, MapIsInterrupted) {
  mproc::Pool pool(2);
  auto sender = interrupt_after(100ms);
  EXPECT_THROW((void)pool.map(sleep_ms, std::vector<int>(8, 1000), 1), mproc::Interrupted);
  sender.join();
  pool.terminate();
}

// A blocking call counts interrupts from its own start, not from its wait's: a SIGINT that comes
// while map reads its items (here: from the reading itself) interrupts it, as one between two of
// its wait slices does.
TEST_F(Interrupt, MapIsInterruptedByASigintWhileItSubmits) {
  mproc::Pool pool(2);
  auto items = std::views::iota(0, 8) | std::views::transform([](int i) {
                 if (i == 0) ::raise(SIGINT);
                 return 1000;
               });
  auto start = std::chrono::steady_clock::now();
  EXPECT_THROW((void)pool.map(sleep_ms, items, 1), mproc::Interrupted);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);  // not the 4 s its tasks would take
  EXPECT_EQ(handled.load(), 1);
  pool.terminate();
}

// On Pool, a map left by Interrupted cancels its chunks not yet started, and lets the running
// ones finish (they are not terminated; their results are dropped): docs/porting.md says so.
TEST_F(Interrupt, MapLeftByInterruptedCancelsItsQueuedChunksAndLetsRunningOnesFinish) {
  mproc::test::TaskCounts& c = mproc::test::fresh_task_counts();
  auto start = std::chrono::steady_clock::now();
  {
    mproc::Pool pool(2);
    std::thread sender([] {  // once both workers run a chunk
      mproc::test::await_started(2);
      ::kill(::getpid(), SIGINT);
    });
    EXPECT_THROW((void)pool.map(sleep_counted, std::vector<int>(40, 400), 1), mproc::Interrupted);
    sender.join();
    EXPECT_EQ(c.finished.load(), 0);  // the running ones are still running
  }                                   // ~Pool: waits for what runs, not for the 38 others (16 s of work on two workers)
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_LE(c.started.load(), 4);
  EXPECT_EQ(c.finished.load(), c.started.load());  // none was killed
}

// A map over rows in the shared heap reads them in place: left by Interrupted, it stops its
// running tasks (on Pool, their workers are killed and replaced) before it returns, since the
// caller may free the rows then; it does not wait for them, so a Ctrl-C is not held up.
TEST_F(Interrupt, MapOverHeapRowsLeftByInterruptedStopsItsRunningTasks) {
  mproc::test::TaskCounts& c = mproc::test::fresh_task_counts();
  mproc::Pool pool(2);
  const auto workers = pool.backend().worker_pids();
  std::pmr::vector<std::pmr::vector<int>> rows(mproc::shared_resource());
  for (int i = 0; i < 8; ++i) rows.emplace_back(1, 30000);  // each row: sleep 30 s
  std::thread sender([] {                                   // once both workers run a task
    mproc::test::await_started(2);
    ::kill(::getpid(), SIGINT);
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW((void)pool.map(sleep_row, rows, 1), mproc::Interrupted);
  sender.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);  // not the 30 s the tasks sleep
  EXPECT_EQ(c.finished.load(), 0);
  for (int pid : workers) EXPECT_TRUE(gone_within(pid, 2s)) << "worker " << pid << " still runs its task";
  rows.clear();                                                                     // what the caller may do at once
  EXPECT_EQ(pool.map(sleep_ms, std::vector<int>{1, 2}), (std::vector<int>{1, 2}));  // replaced, serving
}

TEST_F(Interrupt, JoinIsInterrupted) {
  mproc::Pool pool(1);
  (void)pool.apply_async(sleep_ms, std::tuple{5000});
  pool.close();
  auto sender = interrupt_after(100ms);
  EXPECT_THROW(pool.join(), mproc::Interrupted);
  sender.join();
  pool.terminate();
}

TEST(InterruptDefault, SigintEndsTheProgramAndItsWorkersSilently) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int out[2], err[2];
  ASSERT_EQ(::pipe(out), 0);
  ASSERT_EQ(::pipe(err), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGINT, SIG_DFL);
    ::dup2(err[1], 2);
    ::close(out[0]);
    ::close(err[0]);
    mproc::Pool pool(2);
    auto pids = pool.backend().worker_pids();
    if (::write(out[1], pids.data(), pids.size() * sizeof(int)) < 0) ::_exit(3);
    (void)pool.map(sleep_ms, std::vector<int>(4, 30000), 1);
    ::_exit(0);
  }
  ::close(out[1]);
  ::close(err[1]);
  int pids[2] = {};
  ASSERT_EQ(::read(out[0], pids, sizeof pids), static_cast<ssize_t>(sizeof pids));
  std::this_thread::sleep_for(100ms);
  // As a terminal's Ctrl-C does: the whole process group would get it; here, parent and workers.
  ::kill(child, SIGINT);
  for (int pid : pids) ::kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);
  for (int pid : pids) EXPECT_TRUE(mproc::test::reaped_within(pid, 1s)) << "worker " << pid << " outlived its parent";
  // The child's guard process came to this subreaper too, and ends within a second of the child
  // (the leak check after the test fails on one left).
  (void)mproc::test::reap_children(1s);
  char buf[512];
  ssize_t n = ::read(err[0], buf, sizeof buf);
  EXPECT_EQ(n, 0) << "something printed: " << std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  ::close(out[0]);
  ::close(err[0]);
}
