// System calls that fail, through the os layer's failure injection (src/os/os_testing.hpp):
// fork, pidfd_open, mmap, pipe, shm_open, ftruncate, socketpair and memfd_create failing while
// a Pool, a Process, a SharedMemory block, a Queue or a Pipe is made; close_range failing under
// close_fds_from, which the guard and the tracker close their inherited descriptors with. Each must throw the
// call's std::system_error and leave nothing behind: no child, no descriptor, no thread, no
// shared mapping, nothing in /dev/shm; and the next one made must work. A worker that cannot be
// replaced (fork fails) leaves the pool running on the others.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fault_check.hpp"
#include "fork_helper.hpp"
#include "leak_check.hpp"
#include "mproc/mproc.hpp"
#include "os/os.hpp"
#include "os/os_ipc.hpp"
#include "os/os_testing.hpp"

namespace {

namespace os = mproc::detail::os;
using mproc::test::open_fds;
using mproc::test::thread_count;
using os::testing::Call;
using os::testing::ScopedFailure;
using ::testing::HasSubstr;

// Shared mappings (the pool's memory, shared regions, shm and memfd blocks): "rw-s" in /proc/self/maps.
std::size_t shared_mappings() {
  std::ifstream maps("/proc/self/maps");
  std::string range, perms, rest;
  std::size_t n = 0;
  while (maps >> range >> perms && std::getline(maps, rest))
    if (perms.size() == 4 && perms[3] == 's') ++n;
  return n;
}

struct Resources {
  std::set<int> fds;
  std::size_t threads = 0;
  std::set<pid_t> children;
  std::set<std::string> shm;
  std::size_t shared_maps = 0;

  static Resources now() {
    return {open_fds(), thread_count(), mproc::test::children_of(), mproc::test::shm_entries(), shared_mappings()};
  }
  // Another test may remove its own /dev/shm entries meanwhile: only new ones count.
  bool same_as(const Resources& before) const {
    return fds == before.fds && threads == before.threads && children == before.children &&
           mproc::test::new_shm_entries(before.shm).empty() && shared_maps == before.shared_maps;
  }
};

// A joined thread may linger in /proc/self/task for a moment: allow a second to settle.
void expect_unchanged(const Resources& before) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  Resources after = Resources::now();
  while (!after.same_as(before) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    after = Resources::now();
  }
  EXPECT_EQ(after.fds, before.fds) << "descriptors leaked";
  EXPECT_EQ(after.threads, before.threads) << "threads left";
  EXPECT_EQ(after.children, before.children) << "child processes left";
  EXPECT_THAT(mproc::test::new_shm_entries(before.shm), ::testing::IsEmpty()) << "/dev/shm entries left";
  EXPECT_EQ(after.shared_maps, before.shared_maps) << "shared mappings left";
}

// Makes the (after + 1)th call fail with err while f runs: f must throw the call's error, once,
// and leave nothing behind.
template <class F>
void expect_clean_failure(Call call, int err, unsigned after, const std::string& name, F f) {
  // The shared heap is mapped once per program, by the first Pool or Process, and stays: map it
  // before counting.
  (void)mproc::shared_resource();
  const Resources before = Resources::now();
  {
    ScopedFailure armed(call, err, after);
    try {
      f();
      ADD_FAILURE() << "expected std::system_error from " << name;
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::error_code(err, std::system_category())) << e.what();
      EXPECT_THAT(e.what(), HasSubstr(name + "(")) << e.what();
    }
    EXPECT_EQ(armed.failed(), 1U) << "the injected failure did not happen as armed";
  }
  expect_unchanged(before);
}

// --- Pool(2) construction: mmap; then, in the program's first pool, pipe, mmap, two clones and
// pidfd_open for the program's guard; pipe; then fork and pidfd_open per worker -----------------

// One system call of Pool(2)'s construction that fails.
struct PoolFault {
  const char* test;
  Call call;
  int err;
  unsigned after;  // calls of the same kind that succeed first
  const char* name;
  bool guarded;  // made after the program's guard: a first pool makes it, and it stays
};

void PrintTo(const PoolFault& f, std::ostream* out) { *out << f.test; }

class FaultOsPool : public ::testing::TestWithParam<PoolFault> {};

TEST_P(FaultOsPool, ConstructorThrowsAndLeavesNothing) {
  const PoolFault& f = GetParam();
  if (f.guarded) {
    mproc::Pool first(1);  // ctest runs each case in a process of its own: its first pool
  }
  expect_clean_failure(f.call, f.err, f.after, f.name, [] {
    mproc::Pool pool(2);
    ADD_FAILURE() << "the pool was made";
  });
  mproc::Pool pool(2);
  mproc::test::expect_full_pool_works(pool, 2);
}

std::string fault_name(const ::testing::TestParamInfo<PoolFault>& info) { return info.param.test; }

INSTANTIATE_TEST_SUITE_P(
    Fails, FaultOsPool,
    ::testing::Values(PoolFault{"ForkForTheFirstWorker", Call::fork, EAGAIN, 0, "fork", true},
                      PoolFault{"ForkForTheSecondWorker", Call::fork, ENOMEM, 1, "fork", true},
                      PoolFault{"PidfdOpenForTheFirstWorker", Call::pidfd_open, EMFILE, 0, "pidfd_open", true},
                      PoolFault{"PidfdOpenForTheSecondWorker", Call::pidfd_open, EMFILE, 1, "pidfd_open", true},
                      PoolFault{"MmapOfItsSharedMemory", Call::mmap, ENOMEM, 0, "mmap", false},
                      PoolFault{"MmapOfTheGuardsMemory", Call::mmap, ENOMEM, 1, "mmap", false},
                      PoolFault{"CloneOfTheGuardsFirstStep", Call::clone, EAGAIN, 0, "clone", false},
                      PoolFault{"PidfdOpenOfTheProgramForTheGuard", Call::pidfd_open, EMFILE, 0, "pidfd_open", false},
                      PoolFault{"CloneOfTheGuard", Call::clone, ENOMEM, 1, "clone", false},
                      PoolFault{"PipeOfTheGuard", Call::pipe, EMFILE, 0, "pipe2", false},
                      PoolFault{"PipeOfTheWorkersWatchdog", Call::pipe, EMFILE, 0, "pipe2", true}),
    fault_name);

// Waits up to 5 s for pred.
template <class P>
bool eventually(P pred) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

TEST(FaultOsPoolWorkers, ForkFailsReplacingAWorker) {
  mproc::Pool pool(2);
  auto pids = pool.backend().worker_pids();
  {
    ScopedFailure armed(Call::fork, EAGAIN);
    ASSERT_EQ(::kill(pids[0], SIGKILL), 0);
    ASSERT_TRUE(eventually([&] { return armed.failed() == 1; })) << "the watcher did not try to replace the worker";
  }
  // Unreplaced for good: the other worker runs everything.
  ASSERT_TRUE(eventually([&] { return pool.backend().worker_pids()[0] == 0; }));
  std::vector<int> in(1000);
  for (int i = 0; i < 1000; ++i) in[static_cast<std::size_t>(i)] = i;
  auto out = pool.map(mproc::test::square, in, 1);
  ASSERT_EQ(out.size(), in.size());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(out[static_cast<std::size_t>(i)], i * i);
  EXPECT_EQ(pool.backend().worker_pids(), (std::vector<int>{0, pids[1]}));
  pool.close();
  pool.join();
}

TEST(FaultOsPoolWorkers, ForkFailsReplacingEveryWorker) {
  mproc::Pool pool(2);
  auto pids = pool.backend().worker_pids();
  {
    ScopedFailure armed(Call::fork, EAGAIN, 0, 1000);
    for (int pid : pids) ASSERT_EQ(::kill(pid, SIGKILL), 0);
    ASSERT_TRUE(eventually([&] { return armed.failed() == 2; }));
  }
  ASSERT_TRUE(eventually([&] { return pool.backend().worker_pids() == std::vector<int>{0, 0}; }));
  EXPECT_THROW((void)pool.map(mproc::test::square, std::vector<int>{1, 2, 3}), mproc::PoolNotRunning);
  pool.close();
  pool.join();
}

// --- Process ------------------------------------------------------------------------------------

void noop() {}

TEST(FaultOsProcess, ForkFailsInStart) {
  mproc::Process p(noop);
  expect_clean_failure(Call::fork, EAGAIN, 0, "fork", [&] { p.start(); });
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.pid(), 0);
  p.start();  // the failed start() left it unstarted: it may try again
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(FaultOsProcess, PidfdOpenFailsInStart) {
  mproc::Process p(noop);
  expect_clean_failure(Call::pidfd_open, EMFILE, 0, "pidfd_open", [&] { p.start(); });
  EXPECT_FALSE(p.is_alive());
  mproc::Process q(noop);
  q.start();
  q.join();
  EXPECT_EQ(q.exitcode(), 0);
}

// --- SharedMemory, Queue, Pipe --------------------------------------------------------------------

// These two need a process whose tracker has not started yet (ctest runs each test in a process
// of its own): elsewhere the injected call is not made and they skip.

TEST(FaultOsSharedMemory, TrackerForkFailsInFirstCreate) {
  const Resources before = Resources::now();
  {
    ScopedFailure armed(Call::fork, EAGAIN);
    auto block = mproc::SharedMemory::create(4096);  // without a tracker: unlink() alone cleans up
    block.unlink();
    if (armed.failed() == 0) GTEST_SKIP() << "the tracker was already running";
  }
  expect_unchanged(before);
}

// The tracker starts before the block is made: its pipe failing leaves nothing in /dev/shm.
TEST(FaultOsSharedMemory, TrackerPipeFailsInFirstCreate) {
  const Resources before = Resources::now();
  {
    ScopedFailure armed(Call::pipe, EMFILE);
    try {
      mproc::SharedMemory::create(4096).unlink();
    } catch (const std::system_error& e) {
      EXPECT_THAT(e.what(), HasSubstr("pipe2("));
    }
    if (armed.failed() == 0) GTEST_SKIP() << "the tracker was already running";
  }
  expect_unchanged(before);
}

// The first block a process creates starts the shm tracker, which keeps a pipe's write end open
// for good: start it before counting descriptors.
void start_tracker() { mproc::SharedMemory::create(4096).unlink(); }

TEST(FaultOsSharedMemory, ShmOpenFailsInCreate) {
  start_tracker();
  expect_clean_failure(Call::shm_open, EMFILE, 0, "shm_open", [] { (void)mproc::SharedMemory::create(4096); });
  mproc::SharedMemory::create(4096).unlink();
}

TEST(FaultOsSharedMemory, FtruncateFailsInCreate) {
  start_tracker();
  expect_clean_failure(Call::ftruncate, ENOSPC, 0, "ftruncate", [] { (void)mproc::SharedMemory::create(4096); });
  mproc::SharedMemory::create(4096).unlink();
}

TEST(FaultOsSharedMemory, MmapFailsInCreate) {
  start_tracker();
  expect_clean_failure(Call::mmap, ENOMEM, 0, "mmap", [] { (void)mproc::SharedMemory::create(4096); });
  mproc::SharedMemory::create(4096).unlink();
}

TEST(FaultOsSharedMemory, MmapFailsInAttach) {
  start_tracker();
  auto block = mproc::SharedMemory::create(4096);
  expect_clean_failure(Call::mmap, ENOMEM, 0, "mmap", [&] { (void)mproc::SharedMemory::attach(block.name()); });
  block.unlink();
}

// A queue lives in the shared heap, mapped once per program: making one maps nothing.
TEST(FaultOsQueue, MadeWithoutAnMmapOnceTheHeapIsMapped) {
  (void)mproc::shared_resource();
  ScopedFailure armed(Call::mmap, ENOMEM, 0);
  mproc::Queue<int> q;
  q.put(1);
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(armed.failed(), 0U);
}

TEST(FaultOsPipe, SocketpairFails) {
  expect_clean_failure(Call::socketpair, EMFILE, 0, "socketpair", [] { auto ends = mproc::Pipe<int>(); });
  auto [a, b] = mproc::Pipe<int>();
  a.send(7);
  EXPECT_EQ(b.recv(), 7);
}

// --- the wrappers themselves ----------------------------------------------------------------------

TEST(FaultOsWrappers, MemfdCreateIsCloseOnExecAndShared) {
  const auto shm_before = mproc::test::shm_entries();
  os::Fd fd = os::memfd_create("mproc-test");
  ASSERT_TRUE(fd);
  EXPECT_EQ(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  const std::size_t size = 2 * os::page_size();
  os::ftruncate(fd.get(), size);
  EXPECT_EQ(os::file_size(fd.get()), size);
  auto* a = static_cast<char*>(os::map_fd(fd.get(), size));
  auto* b = static_cast<char*>(os::map_fd(fd.get(), size));
  std::strcpy(a + os::page_size(), "seen through the other mapping");
  EXPECT_STREQ(b + os::page_size(), "seen through the other mapping");
  os::unmap(a, size);
  os::unmap(b, size);
  EXPECT_THAT(mproc::test::new_shm_entries(shm_before), ::testing::IsEmpty());
}

TEST(FaultOsWrappers, MemfdCreateFails) {
  expect_clean_failure(Call::memfd_create, EMFILE, 0, "memfd_create", [] { (void)os::memfd_create("mproc-test"); });
}

TEST(FaultOsWrappers, FileStamp) {
  auto exe = os::file_stamp("/proc/self/exe");
  ASSERT_TRUE(exe);
  EXPECT_GT(exe->size, 0U);
  EXPECT_GT(exe->mtime, 0);
  EXPECT_FALSE(os::file_stamp("/nonexistent/mproc"));
}

volatile sig_atomic_t g_handled = 0;
void on_usr1(int sig, siginfo_t*, void*) { g_handled = sig; }

TEST(FaultOsWrappers, SignalHandlersInstallChainAndRestore) {
  struct sigaction previous {};
  os::install_signal_handler(SIGUSR1, on_usr1, 0, &previous);
  ::raise(SIGUSR1);
  EXPECT_EQ(g_handled, SIGUSR1);
  struct sigaction ours {};
  ::sigaction(SIGUSR1, nullptr, &ours);
  g_handled = 0;
  os::call_handler(ours, SIGUSR1, nullptr, nullptr);
  EXPECT_EQ(g_handled, SIGUSR1);
  os::call_handler(previous, SIGUSR1, nullptr, nullptr);  // SIG_DFL: nothing is called
  os::restore_signal_action(SIGUSR1, previous);
  struct sigaction now {};
  ::sigaction(SIGUSR1, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

TEST(FaultOsWrappers, RaiseDefaultEndsTheProcessBySignal) {
  pid_t pid = mproc::test::fork_child([] {
    struct sigaction previous {};
    os::install_signal_handler(SIGTERM, on_usr1, 0, &previous);
    os::write_stderr("", 0);
    os::raise_default(SIGTERM);
  });
  int status = mproc::test::wait_child(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}

TEST(FaultOsWrappers, InjectionCountsCallsAndStops) {
  ScopedFailure armed(Call::pipe, ENFILE, /*after=*/2, /*times=*/2);
  EXPECT_NO_THROW((void)os::pipe());
  EXPECT_NO_THROW((void)os::pipe());
  EXPECT_THROW((void)os::pipe(), std::system_error);
  EXPECT_THROW((void)os::pipe(), std::system_error);
  EXPECT_NO_THROW((void)os::pipe());
  EXPECT_EQ(armed.failed(), 2U);
}

TEST(FaultOsWrappers, EintrIsRetriedAsAlways) {
  ScopedFailure armed(Call::fork, EINTR, 0, 3);
  pid_t pid = os::fork();
  if (pid == 0) os::exit_now(0);
  os::reap(pid);
  EXPECT_EQ(armed.failed(), 3U);
}

TEST(FaultOsWrappers, RawForkFailsLikeTheRealOne) {
  ScopedFailure armed(Call::fork, EAGAIN);
  errno = 0;
  EXPECT_EQ(os::fork_raw(), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST(FaultOsWrappers, ClearedCallsSucceed) {
  os::testing::fail(Call::pipe, EMFILE, 0, 5);
  os::testing::fail(Call::mmap, ENOMEM, 0, 5);
  os::testing::clear_all();
  EXPECT_NO_THROW((void)os::pipe());
  void* p = os::map_shared_anonymous(4096);
  os::unmap(p, 4096);
}

}  // namespace

// close_range refused (ENOSYS: a kernel before 5.9; EPERM: a seccomp profile): close_fds_from
// still closes every descriptor from first on but keep. High numbers, so that the test's own
// descriptors stay open.
TEST(FaultOs, CloseFdsFromClosesEveryDescriptorWhenCloseRangeFails) {
  for (int err : {ENOSYS, EPERM}) {
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(null, 0);
    for (int fd : {900, 901, 902, 903, 1500}) ASSERT_EQ(::dup2(null, fd), fd);
    ::close(null);
    ScopedFailure failing(Call::close_range, err, 0, 2);
    os::close_fds_from(900, 902);
    EXPECT_GE(failing.failed(), 1u);
    for (int fd : {900, 901, 903, 1500}) EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "fd " << fd << " errno " << err;
    EXPECT_NE(::fcntl(902, F_GETFD), -1) << "errno " << err;
    ::close(902);
  }
}

namespace {

std::vector<char> echo_bytes(std::vector<char> v) { return v; }

}  // namespace

// MADV_POPULATE_WRITE refused (EINVAL: a kernel before 5.14; ENOMEM; EINTR: a signal pending):
// big payloads, which the heap populates before they are written and read, still cross whole,
// their pages faulted in one by one. Armed before the pool forks, so its workers' calls fail too.
// Each size its own: a range populated once is not populated again.
TEST(FaultOs, BigPayloadsCrossWhenPopulateFails) {
  std::size_t bytes = std::size_t{6} << 20;
  for (int err : {EINVAL, ENOMEM, EINTR}) {
    bytes += std::size_t{5} << 20;
    ScopedFailure failing(Call::populate, err, 0, 1'000'000);
    std::vector<char> sent(bytes);
    for (std::size_t i = 0; i < bytes; ++i) sent[i] = static_cast<char>(i * 7 + i / 4096);
    {
      mproc::Pool pool(1);
      for (int call = 0; call < 2; ++call)
        ASSERT_EQ(pool.apply(echo_bytes, std::tuple{sent}), sent) << "errno " << err << ", call " << call;
    }
    EXPECT_GE(failing.failed(), 1u) << "errno " << err << ": nothing was populated";
  }
}
