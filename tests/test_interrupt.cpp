// Ctrl-C: where the program installed a SIGINT handler, a blocking get, map or join is
// interrupted with mproc::Interrupted (and the program's handler still runs); where it did not,
// SIGINT ends the program as usual, its workers with it, and no worker prints a report.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "mproc/mproc.hpp"

using namespace std::chrono_literals;

namespace {

std::atomic<int> handled{0};
void on_sigint(int) { handled.fetch_add(1); }

int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
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
  for (int pid : pids) {
    bool gone = false;
    for (int i = 0; i < 200 && !gone; ++i) {
      gone = ::waitpid(pid, nullptr, WNOHANG) == pid;
      if (!gone) std::this_thread::sleep_for(5ms);
    }
    EXPECT_TRUE(gone) << "worker " << pid << " outlived its parent";
  }
  char buf[512];
  ssize_t n = ::read(err[0], buf, sizeof buf);
  EXPECT_EQ(n, 0) << "something printed: " << std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  ::close(out[0]);
  ::close(err[0]);
}
