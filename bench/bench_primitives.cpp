// Benchmarks of the primitives: a Queue<int> streaming between two processes, 64 MB items through
// a Queue beside memcpy, a Pipe round trip beside a bare futex round trip (the floor for any
// cross-process wake-up), and an uncontended Lock acquire + release.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#include <benchmark/benchmark.h>

#include "mproc/pipe.hpp"
#include "mproc/process.hpp"
#include "mproc/queue.hpp"
#include "mproc/sync.hpp"

namespace {

// Items/s of a Queue<int> fed by a producer process and drained by this one, pipelined.
void BM_QueueIntBetweenProcesses(benchmark::State& state) {
  mproc::Queue<int> q(0, std::size_t{1} << 20);
  auto n = static_cast<int>(state.max_iterations);
  mproc::Process producer([q, n]() mutable {
    for (int i = 0; i < n; ++i) q.put(i);
  });
  producer.start();
  for (auto _ : state) benchmark::DoNotOptimize(q.get());
  producer.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_QueueIntBetweenProcesses)->UseRealTime()->Iterations(2'000'000);

constexpr std::size_t kBigItem = 64'000'000;  // "64 MB": under the 64 MiB a queue keeps warm

// A 64 MB std::vector<char> through a Queue from a producer process to this one (encode, copy
// into the payload block, decode out of it into a fresh vector), next to BM_Memcpy64MB and to
// BM_FirstTouch64MB, the part a fresh vector costs. maxsize 1, so that the producer does not run
// ahead into fresh blocks: a stream's steady state.
void BM_Queue64MBBetweenProcesses(benchmark::State& state) {
  mproc::Queue<std::vector<char>> q(1);
  auto n = static_cast<int>(state.max_iterations);
  mproc::Process producer([q, n]() mutable {
    std::vector<char> item(kBigItem, 'q');
    for (int i = 0; i < n; ++i) q.put(item);
  });
  producer.start();
  for (auto _ : state) benchmark::DoNotOptimize(q.get().data());
  producer.join();
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kBigItem));
}
BENCHMARK(BM_Queue64MBBetweenProcesses)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(20);

// memcpy of 64 MB between two warm buffers.
void BM_Memcpy64MB(benchmark::State& state) {
  std::vector<char> from(kBigItem, 'm'), to(kBigItem, 0);
  for (auto _ : state) {
    std::memcpy(to.data(), from.data(), kBigItem);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kBigItem));
}
BENCHMARK(BM_Memcpy64MB)->Unit(benchmark::kMillisecond);

// memcpy of 64 MB into a fresh vector, as each get's decode does.
void BM_FirstTouch64MB(benchmark::State& state) {
  std::vector<char> from(kBigItem, 'm');
  for (auto _ : state) {
    std::vector<char> to(from.begin(), from.end());
    benchmark::DoNotOptimize(to.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kBigItem));
}
BENCHMARK(BM_FirstTouch64MB)->Unit(benchmark::kMillisecond);

// One small message there and back over a Pipe, to an echoing child.
void BM_PipeRoundTrip(benchmark::State& state) {
  auto [here, there] = mproc::Pipe<int>();
  mproc::Process echo([&] {
    here.close();
    for (;;) {
      int v = there.recv();
      if (v < 0) break;
      there.send(v);
    }
  });
  echo.start();
  there.close();
  int i = 0;
  for (auto _ : state) {
    here.send(i++);
    benchmark::DoNotOptimize(here.recv());
  }
  here.send(-1);
  echo.join();
}
BENCHMARK(BM_PipeRoundTrip)->UseRealTime();

long futex(std::atomic<std::uint32_t>* w, int op, std::uint32_t v) {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(w), op, v, nullptr, nullptr, 0);
}

// The same round trip with nothing but two futex words: sleep, wake, sleep, wake.
void BM_FutexRoundTrip(benchmark::State& state) {
  struct Words {
    std::atomic<std::uint32_t> ping{0}, pong{0};
  };
  auto words = mproc::detail::make_shared_state<Words>(mproc::detail::ObjectKind::value);
  Words* w = words.get();
  mproc::Process echo([w] {
    for (std::uint32_t seen = 0;;) {
      while (w->ping.load() == seen) futex(&w->ping, FUTEX_WAIT, seen);
      seen = w->ping.load();
      w->pong.store(seen);
      futex(&w->pong, FUTEX_WAKE, INT_MAX);
      if (seen == UINT32_MAX) break;
    }
  });
  echo.start();
  std::uint32_t i = 0;
  for (auto _ : state) {
    ++i;
    w->ping.store(i);
    futex(&w->ping, FUTEX_WAKE, INT_MAX);
    // One load per check: waiting on a second, later load could sleep on the very value awaited.
    for (std::uint32_t seen; (seen = w->pong.load()) != i;) futex(&w->pong, FUTEX_WAIT, seen);
  }
  w->ping.store(UINT32_MAX);
  futex(&w->ping, FUTEX_WAKE, INT_MAX);
  echo.join();
}
BENCHMARK(BM_FutexRoundTrip)->UseRealTime();

void BM_LockUncontended(benchmark::State& state) {
  mproc::Lock lock;
  for (auto _ : state) {
    lock.acquire();
    lock.release();
  }
}
BENCHMARK(BM_LockUncontended);

void BM_StdScopedLockOnLock(benchmark::State& state) {
  mproc::Lock lock;
  for (auto _ : state) std::scoped_lock hold(lock);
}
BENCHMARK(BM_StdScopedLockOnLock);

}  // namespace

BENCHMARK_MAIN();
