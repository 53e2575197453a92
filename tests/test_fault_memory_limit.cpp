// PoolOptions::memory_limit: a task that allocates past its worker's limit fails with
// MemoryLimitError (a WorkerLost naming the limit and the usage seen), its worker is replaced and
// the pool goes on; with retries, a task that always does so fails after 3 attempts, one that does
// so once succeeds. The shared heap's reservation (64 GiB of shared address space in every
// process) does not count. Where this process may not make cgroup v2 groups (here and in CI: the
// machine has cgroup v1's memory controller only), RLIMIT_DATA is what runs; the cgroup path's
// detection is tested for what it says.
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <memory_resource>
#include <new>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "backend/process/memory_limit.hpp"
#include "fault_check.hpp"
#include "os/os_limits.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr std::size_t kLimit = 64 * kMiB;

// Allocates and touches 8 MiB blocks (touched: a cgroup counts pages used, not allocations)
// until total bytes, or until an allocation fails.
int hog(std::size_t total) {
  std::vector<std::unique_ptr<char[]>> blocks;
  for (std::size_t got = 0; got < total; got += 8 * kMiB) {
    blocks.emplace_back(new char[8 * kMiB]);
    std::memset(blocks.back().get(), 1, 8 * kMiB);
  }
  return static_cast<int>(blocks.size());
}

int hog_a_gib(int) { return hog(1024 * kMiB); }
int hog_a_little(int) { return hog(16 * kMiB); }

// Fails its allocation in a function that may not throw: the worker dies (std::terminate).
void hog_noexcept() noexcept { (void)hog(1024 * kMiB); }
int die_in_the_allocator(int) {
  hog_noexcept();
  return 0;
}

// Catches its own failed allocation and goes on: nothing for the pool to see.
int catch_bad_alloc(int) {
  try {
    return hog(1024 * kMiB);
  } catch (const std::bad_alloc&) {
    return -1;
  }
}

mproc::Value<int>* g_runs = nullptr;  // made before the pools: shared with their workers

// Past the limit on its first run only.
int hog_the_first_time(int x) {
  const int before = g_runs->get();  // one task runs at a time here
  g_runs->set(before + 1);
  if (before == 0) (void)hog(1024 * kMiB);
  return x * 2;
}

// This process's VmData, in bytes.
std::size_t vm_data() { return mproc::detail::os::data_bytes(); }

// ASan's allocator reports a failed allocation and ends the process (allocator_may_return_null
// is off), so no std::bad_alloc reaches the task; and its shadow memory, private and writable,
// is part of VmData.
#ifdef __SANITIZE_ADDRESS__
#define SKIP_UNDER_ASAN() GTEST_SKIP() << "AddressSanitizer ends the process on a failed allocation"
#else
#define SKIP_UNDER_ASAN() (void)0
#endif

mproc::Pool limited_pool(int retries = 0) {
  return mproc::Pool(mproc::PoolOptions{.processes = 2, .memory_limit = kLimit, .retries = retries});
}

void expect_memory_limit_error(const mproc::MemoryLimitError& e, int attempts) {
  EXPECT_EQ(e.limit(), kLimit);
  EXPECT_GT(e.used(), 0u) << e.what();
  EXPECT_LE(e.used(), kLimit) << e.what();
  EXPECT_EQ(e.attempts(), attempts);
  EXPECT_NE(std::string(e.what()).find("memory_limit of 67108864 bytes (64.0 MiB)"), std::string::npos) << e.what();
  if (attempts > 1) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(attempts) + " attempts"), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(FaultMemoryLimit, BelowTheMinimumThrowsNamingIt) {
  try {
    mproc::Pool pool(mproc::PoolOptions{.processes = 1, .memory_limit = 16 * kMiB});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("memory_limit"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("33554432 bytes (32 MiB)"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(
      mproc::Pool(mproc::PoolOptions{.processes = 1, .memory_limit = mproc::PoolOptions::min_memory_limit}));
}

TEST(FaultMemoryLimit, ThreadPoolRefusesIt) {
  EXPECT_THROW(mproc::ThreadPool(mproc::PoolOptions{.processes = 1, .memory_limit = kLimit}), std::invalid_argument);
}

TEST(FaultMemoryLimit, NoCgroupDelegationHereSoRlimitIsUsed) {
  // What detection says must match the files: a cgroup v2 group whose children may be given
  // memory.max. On cgroup v1 (or a hybrid mount without the memory controller), none.
  auto dir = mproc::detail::os::delegated_memory_cgroup();
  std::ifstream mounts("/proc/self/mountinfo");
  std::stringstream text;
  text << mounts.rdbuf();
  if (text.str().find(" - cgroup2 ") == std::string::npos) {
    EXPECT_FALSE(dir) << *dir;
  }
  if (dir) {
    std::ifstream subtree(*dir + "/cgroup.subtree_control");
    std::string controllers((std::istreambuf_iterator<char>(subtree)), {});
    EXPECT_NE(controllers.find("memory"), std::string::npos);
    GTEST_SKIP() << "cgroup v2 delegation available at " << *dir << ": the cgroup path runs here";
  }
}

TEST(FaultMemoryLimit, TaskPastTheLimitFailsAndTheWorkerIsReplaced) {
  SKIP_UNDER_ASAN();
  auto pool = limited_pool();
  const auto pids = pool.backend().worker_pids();
  auto small = pool.apply(hog_a_little, std::tuple{0});  // well within: no error
  EXPECT_EQ(small, 2);
  try {
    (void)pool.apply_async(hog_a_gib, std::tuple{0}).get(30s);
    FAIL() << "no exception";
  } catch (const mproc::MemoryLimitError& e) {
    expect_memory_limit_error(e, 1);
    // A std::bad_alloc that escaped the task: the worker left with the status mproc gives it.
    EXPECT_EQ(e.signal(), 0);
    EXPECT_EQ(e.exit_code(), 77);
    EXPECT_NE(std::find(pids.begin(), pids.end(), e.pid()), pids.end());
  }
  mproc::test::expect_full_pool_works(pool, 2);
  EXPECT_NE(pool.backend().worker_pids(), pids) << "the worker that ran out was not replaced";
}

TEST(FaultMemoryLimit, WorkerThatDiesInTheAllocatorIsReportedTheSame) {
  SKIP_UNDER_ASAN();
  auto pool = limited_pool();
  try {
    (void)pool.apply_async(die_in_the_allocator, std::tuple{0}).get(30s);
    FAIL() << "no exception";
  } catch (const mproc::MemoryLimitError& e) {
    expect_memory_limit_error(e, 1);
    EXPECT_EQ(e.signal(), SIGABRT);
  }
  mproc::test::expect_full_pool_works(pool, 2);
}

TEST(FaultMemoryLimit, TaskThatCatchesItsBadAllocKeepsItsWorker) {
  SKIP_UNDER_ASAN();
  auto pool = limited_pool();
  const auto pids = pool.backend().worker_pids();
  EXPECT_EQ(pool.apply(catch_bad_alloc, std::tuple{0}), -1);
  EXPECT_EQ(pool.apply(hog_a_little, std::tuple{0}), 2);  // its memory was given back
  EXPECT_EQ(pool.backend().worker_pids(), pids);
}

TEST(FaultMemoryLimit, OneItemOfAMapFailsTheMapThePoolGoesOn) {
  SKIP_UNDER_ASAN();
  auto pool = limited_pool();
  std::vector<int> xs(20);
  std::iota(xs.begin(), xs.end(), 0);
  EXPECT_THROW((void)pool.map([](int i) { return i == 7 ? hog_a_gib(i) : i; }, xs, 1), mproc::MemoryLimitError);
  mproc::test::expect_full_pool_works(pool, 2);
}

TEST(FaultMemoryLimit, WithRetriesATaskAlwaysPastItFailsAfterThreeAttempts) {
  SKIP_UNDER_ASAN();
  auto pool = limited_pool(2);
  try {
    (void)pool.apply_async(hog_a_gib, std::tuple{0}).get(60s);
    FAIL() << "no exception";
  } catch (const mproc::MemoryLimitError& e) {
    expect_memory_limit_error(e, 3);
  }
  mproc::test::expect_full_pool_works(pool, 2);
}

TEST(FaultMemoryLimit, WithRetriesATaskPastItOnceSucceeds) {
  SKIP_UNDER_ASAN();
  mproc::Value<int> runs(0);
  g_runs = &runs;
  auto pool = limited_pool(2);
  EXPECT_EQ(pool.apply_async(hog_the_first_time, std::tuple{21}).get(60s), 42);
  EXPECT_EQ(runs.get(), 2);
}

TEST(FaultMemoryLimit, TheSharedHeapsReservationDoesNotCount) {
  SKIP_UNDER_ASAN();
  // Every process maps the heap's whole range (64 GiB unless the system refused): RLIMIT_AS
  // would count it; RLIMIT_DATA, which counts private writable memory only, does not.
  (void)mproc::shared_resource();
  ASSERT_GE(mproc::heap_stats().reserved, std::size_t{1} << 30);
  EXPECT_LT(vm_data(), mproc::heap_stats().reserved);
  auto pool = limited_pool();
  // In a worker: its VmData is far below the reservation, and 3 × the limit allocated from the
  // shared heap (shared pages, charged to no private limit) is fine.
  auto worker_data = pool.apply([](int) { return static_cast<long>(vm_data()); }, std::tuple{0});
  EXPECT_LT(static_cast<std::size_t>(worker_data), mproc::heap_stats().reserved);
  auto in_heap = pool.apply(
      [](int) {
        auto* heap = mproc::shared_resource();
        const std::size_t size = 3 * kLimit;
        void* p = heap->allocate(size);
        std::memset(p, 1, size);
        heap->deallocate(p, size);
        return 1;
      },
      std::tuple{0});
  EXPECT_EQ(in_heap, 1);
}

// The watcher takes what a dead worker left (remains_of) under the pool's lock, before the slot's
// replacement resets it, and reads the verdict (and removes a cgroup) after the lock: the verdict
// must come from what was taken, not from the slot as it is by then.
TEST(FaultMemoryLimit, TheVerdictComesFromWhatTheDeadWorkerLeftNotFromItsReplacement) {
  mproc::PoolOptions options;
  options.memory_limit = kLimit;
  mproc::detail::MemoryLimiter limiter(options);
  mproc::detail::SlotShared shared;
  mproc::detail::Slot slot;
  slot.shared = &shared;
  shared.memory_failed_seq.store(7);
  shared.memory_used.store(65 * kMiB);
  auto remains = limiter.remains_of(slot);
  shared.memory_failed_seq.store(0);  // as spawn() leaves them for the replacement
  shared.memory_used.store(0);
  const mproc::detail::os::ExitStatus status{.code = mproc::detail::kMemoryLimitExit};
  auto error = limiter.verdict(std::move(remains), 7, 1234, status, 1);
  ASSERT_TRUE(error);
  try {
    std::rethrow_exception(error);
  } catch (const mproc::MemoryLimitError& e) {
    EXPECT_EQ(e.pid(), 1234);
    EXPECT_EQ(e.used(), 65 * kMiB);
  }
  EXPECT_FALSE(limiter.verdict(limiter.remains_of(slot), 8, 1234, status, 1));  // another chunk's death
}
