// Tests of Process: exit codes, names, join with and without timeouts, signals, daemons, nesting.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/pool.hpp"
#include "mproc/process.hpp"
#include "mproc/shared_memory.hpp"
#include "mproc/sync.hpp"

using namespace std::chrono_literals;

namespace {

// The pipes of which pid holds a write end ("pipe:[inode]"; "self" for this process).
std::set<std::string> pipe_write_ends(const std::string& pid) {
  std::set<std::string> pipes;
  std::string dir = "/proc/" + pid + "/fd/";
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string path = dir + e->d_name;
      char target[128] = {};
      if (::readlink(path.c_str(), target, sizeof target - 1) <= 0 || std::strncmp(target, "pipe:", 5) != 0) continue;
      std::ifstream info("/proc/" + pid + "/fdinfo/" + e->d_name);
      std::string key;
      int flags = 0;
      while (info >> key)
        if (key == "flags:") {
          info >> std::oct >> flags;
          break;
        }
      if ((flags & O_ACCMODE) == O_WRONLY) pipes.insert(target);
    }
    ::closedir(d);
  }
  return pipes;
}

void copy_name(mproc::Array<char>& out, const std::string& name) {
  std::size_t n = std::min(name.size(), out.size() - 1);
  std::memcpy(out.begin(), name.data(), n);
  out[n] = '\0';
}

// A process that is gone or a zombie no one will reap.
bool gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

}  // namespace

TEST(process_Process, ExitCodes) {
  mproc::Process ok([] {});
  mproc::Process threw([] { throw std::runtime_error("boom in child"); });
  mproc::Process exited([] { std::exit(7); });
  mproc::Process killed([] { ::raise(SIGKILL); });
  EXPECT_FALSE(ok.exitcode().has_value());
  for (auto* p : {&ok, &threw, &exited, &killed}) p->start();
  for (auto* p : {&ok, &threw, &exited, &killed}) p->join();
  EXPECT_EQ(ok.exitcode(), 0);
  EXPECT_EQ(threw.exitcode(), 1);
  EXPECT_EQ(exited.exitcode(), 7);
  EXPECT_EQ(killed.exitcode(), -SIGKILL);
  EXPECT_FALSE(ok.is_alive());
}

TEST(process_Process, ArgumentsAndCaptures) {
  mproc::Value<int> out(0);
  int base = 40;
  mproc::Process p([base](mproc::Value<int> v, int a, std::string s) { v.set(base + a + static_cast<int>(s.size())); },
                   out, 1, std::string("x"));
  p.start();
  p.join();
  EXPECT_EQ(out.get(), 42);
}

TEST(process_Process, StartTwiceThrowsAndCloseWhileRunningThrows) {
  mproc::Event go;
  mproc::Process p([go]() mutable { go.wait(10s); });
  p.start();
  EXPECT_THROW(p.start(), std::logic_error);
  EXPECT_THROW(p.close(), std::logic_error);
  EXPECT_TRUE(p.is_alive());
  EXPECT_FALSE(p.join(50ms));
  go.set();
  EXPECT_TRUE(p.join(10s));
  EXPECT_EQ(p.exitcode(), 0);
  p.close();
}

// As Python's ValueError("process object is closed"): after close() every method but close(),
// name() and daemon() throws; a second close() does nothing; closed, it is no active child.
TEST(process_Process, ClosedProcessRefusesEverythingButClose) {
  mproc::Process p([] {});
  p.start();
  p.join();
  p.close();
  EXPECT_NO_THROW(p.close());
  EXPECT_THROW((void)p.is_alive(), std::logic_error);
  EXPECT_THROW(p.join(), std::logic_error);
  EXPECT_THROW(p.join(10ms), std::logic_error);
  EXPECT_THROW(p.terminate(), std::logic_error);
  EXPECT_THROW(p.kill(), std::logic_error);
  EXPECT_THROW((void)p.exitcode(), std::logic_error);
  EXPECT_THROW((void)p.pid(), std::logic_error);
  EXPECT_THROW((void)p.sentinel(), std::logic_error);
  EXPECT_THROW(p.start(), std::logic_error);
  EXPECT_EQ(p.name().rfind("Process-", 0), 0u);
  EXPECT_FALSE(p.daemon());
  try {
    (void)p.is_alive();
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("process object is closed"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(mproc::active_children().empty());

  mproc::Process never([] {});
  never.close();
  EXPECT_THROW(never.start(), std::logic_error);
}

TEST(process_Process, NamesAndCurrentProcess) {
  EXPECT_EQ(mproc::current_process().name(), "MainProcess");
  EXPECT_FALSE(mproc::parent_process().has_value());
  mproc::Array<char> seen(64), parent(64), nested(64);
  mproc::Process named(mproc::ProcessOptions{.name = "loader"},
                       [&] { copy_name(seen, mproc::current_process().name()); });
  EXPECT_EQ(named.name(), "loader");
  mproc::Process anon([&] {
    copy_name(parent, mproc::parent_process()->name());
    mproc::Process inner([&] { copy_name(nested, mproc::current_process().name()); });
    inner.start();
    inner.join();
  });
  EXPECT_EQ(anon.name().rfind("Process-", 0), 0u);
  named.start();
  anon.start();
  named.join();
  anon.join();
  EXPECT_EQ(anon.exitcode(), 0);
  EXPECT_STREQ(seen.begin(), "loader");
  EXPECT_STREQ(parent.begin(), "MainProcess");
  EXPECT_EQ(std::string(nested.begin()), anon.name() + ":1");
}

TEST(process_Process, HundredStartedAndTerminatedAllReportSigterm) {
  std::vector<mproc::Process> ps;
  ps.reserve(100);
  for (int i = 0; i < 100; ++i) ps.emplace_back([] { std::this_thread::sleep_for(60s); });
  for (auto& p : ps) p.start();
  EXPECT_EQ(mproc::active_children().size(), 100u);
  for (auto& p : ps) p.terminate();
  for (auto& p : ps) p.join();
  for (auto& p : ps) EXPECT_EQ(p.exitcode(), -SIGTERM);
  EXPECT_TRUE(mproc::active_children().empty());
}

TEST(process_Process, KillAndSentinel) {
  mproc::Process p([] { std::this_thread::sleep_for(60s); });
  p.start();
  EXPECT_GT(p.pid(), 0);
  EXPECT_GE(p.sentinel(), 0);
  p.kill();
  EXPECT_TRUE(p.join(10s));
  EXPECT_EQ(p.exitcode(), -SIGKILL);
}

namespace {
void on_usr1(int) {}
}  // namespace

TEST(process_Process, JoinSurvivesSignals) {
  struct sigaction sa {
  }, old{};
  sa.sa_handler = on_usr1;  // no SA_RESTART: blocking calls see EINTR
  ::sigaction(SIGUSR1, &sa, &old);
  mproc::Process p([] { std::this_thread::sleep_for(300ms); });
  p.start();
  std::atomic<bool> stop{false};
  pthread_t main_thread = ::pthread_self();
  std::thread pester([&] {
    while (!stop) {
      ::pthread_kill(main_thread, SIGUSR1);
      std::this_thread::sleep_for(5ms);
    }
  });
  EXPECT_FALSE(p.join(100ms));
  p.join();
  stop = true;
  pester.join();
  ::sigaction(SIGUSR1, &old, nullptr);
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(process_Process, DaemonEndsWithItsParent) {
  mproc::Value<pid_t> daemon_pid(0);
  mproc::Process parent([daemon_pid]() mutable {
    mproc::Process d(mproc::ProcessOptions{.name = {}, .daemon = true}, [] { std::this_thread::sleep_for(60s); });
    d.start();
    daemon_pid.set(d.pid());
    ::_exit(0);  // no destructors: only the parent-death signal can end the daemon
  });
  parent.start();
  parent.join();
  pid_t pid = daemon_pid.get();
  ASSERT_GT(pid, 0);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!gone(pid) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(gone(pid));
}

TEST(process_Process, LockHolderDyingDoesNotDeadlock) {
  mproc::Lock lock;
  mproc::Event held;
  mproc::Process p([&] {
    lock.acquire();
    held.set();
    std::this_thread::sleep_for(60s);
  });
  p.start();
  ASSERT_TRUE(held.wait(10s));
  p.kill();
  p.join();
  ASSERT_TRUE(lock.acquire(5s));
  EXPECT_TRUE(lock.previous_owner_died());
  lock.release();
}

// A Pool's parent-only descriptors (the write end of the pipe whose EOF tells its workers that
// their parent is gone, which the workers themselves do not hold) are closed in a Process.
TEST(process_Process, ChildDoesNotKeepAPoolsParentOnlyPipe) {
  std::set<std::string> before = pipe_write_ends("self");
  mproc::Pool pool(2);
  // A worker holds the parent-only end for a moment after its fork, until it closes it.
  std::set<std::string> parent_only;
  auto end = std::chrono::steady_clock::now() + 5s;
  while (parent_only.empty() && std::chrono::steady_clock::now() < end) {
    parent_only = pipe_write_ends("self");
    for (const auto& pipe : before) parent_only.erase(pipe);
    for (pid_t worker : pool.backend().worker_pids())
      for (const auto& pipe : pipe_write_ends(std::to_string(worker))) parent_only.erase(pipe);
    if (parent_only.empty()) std::this_thread::sleep_for(1ms);
  }
  ASSERT_FALSE(parent_only.empty()) << "no pipe written only by the pool's parent";
  mproc::Value<int> kept(-1);
  mproc::Process child([&] {
    int n = 0;
    for (const auto& pipe : pipe_write_ends("self")) n += static_cast<int>(parent_only.count(pipe));
    kept.set(n);
  });
  child.start();
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_EQ(kept.get(), 0) << "the child holds a write end that only the pool's parent should";
}

// A callable that throws: exit code 1 and, on stderr, the exception's readable type and message.
TEST(process_Process, ThrowingCallableReportsTheDemangledType) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  int saved = ::dup(2);
  ::dup2(pipe_fds[1], 2);
  mproc::Process child([] { throw std::runtime_error("boom"); });
  child.start();
  ::dup2(saved, 2);
  ::close(saved);
  ::close(pipe_fds[1]);
  child.join();
  EXPECT_EQ(child.exitcode(), 1);
  std::string err;
  char buf[256];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<std::size_t>(n));
  ::close(pipe_fds[0]);
  EXPECT_NE(err.find("std::runtime_error: boom"), std::string::npos) << err;
  EXPECT_EQ(err.find("St13runtime_error"), std::string::npos) << err;
}

int cube(int x) { return x * x * x; }

// A Pool made in a Process child, after one in the parent has come and gone, guards its own
// workers: the parent's guard, whose memory the child does not inherit, is not the child's.
TEST(process_Process, ChildMakesAPoolAfterTheParentsEnded) {
  {
    mproc::Pool pool(2);
    EXPECT_EQ(pool.apply(cube, std::tuple{2}), 8);
  }
  mproc::Value<int> got(0);
  mproc::Process child([&] {
    mproc::Pool pool(2);
    got.set(pool.apply(cube, std::tuple{3}));
  });
  child.start();
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_EQ(got.get(), 27);
  mproc::Pool again(2);
  EXPECT_EQ(again.apply(cube, std::tuple{4}), 64);
}
