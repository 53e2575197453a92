// Workers under a memory limit set with setrlimit in the initializer: a stack that grows past
// its limit kills the worker (WorkerLost); a heap allocation past RLIMIT_AS fails the task with
// std::bad_alloc and the worker goes on.
#include <signal.h>
#include <sys/resource.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "fault_check.hpp"

namespace {

void limit(int resource, rlim_t bytes) {
  rlimit r{bytes, bytes};
  if (::setrlimit(resource, &r) != 0) throw std::runtime_error("setrlimit failed");
}

// Each frame keeps a page alive, so the stack grows until the limit kills the process.
int deep(int n) {
  volatile char page[4096];
  page[0] = static_cast<char>(n);
  return n == 0 ? page[0] : deep(n - 1) + page[0];
}

// The address space this process has reserved now (VmSize): the shared heap's reservation is part
// of it, so an RLIMIT_AS meant as "this much more" is set above it.
rlim_t address_space_now() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmSize:", 0) == 0) return rlim_t{std::stoull(line.substr(7))} * 1024;
  throw std::runtime_error("no VmSize in /proc/self/status");
}

}  // namespace

TEST(FaultMemory, StackPastItsLimitKillsTheWorker) {
  mproc::test::expect_worker_lost_then_recovers([](int) { return deep(1 << 20); }, {SIGSEGV, 0},
                                                {.processes = 2, .initializer = [] { limit(RLIMIT_STACK, 1 << 20); }});
}

TEST(FaultMemory, HeapPastTheAddressSpaceLimitFailsOnlyTheTask) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "AddressSanitizer cannot run under an address-space limit (its shadow memory is mapped lazily)";
#endif
  mproc::Pool pool(mproc::PoolOptions{
      .processes = 2, .initializer = [] { limit(RLIMIT_AS, address_space_now() + (rlim_t{1} << 30)); }});
  auto r = pool.apply_async(
      [](int) {
        // Untouched blocks: RLIMIT_AS counts address space, so the limit is reached at once, and
        // without filling pages (a GiB of first touches takes seconds on a loaded machine).
        std::vector<std::unique_ptr<char[]>> hog;
        for (;;) hog.emplace_back(new char[std::size_t{64} << 20]);
        return 0;
      },
      std::tuple{0});
  EXPECT_THROW((void)r.get(std::chrono::seconds(10)), std::bad_alloc);
  mproc::test::expect_full_pool_works(pool, 2);
}
