// The article's map with its rows on the shared heap (issue 16, "How fast"): 300000 rows in a
// std::pmr::vector<std::pmr::vector<int>> made after the pool, mapped on a started Pool(2) and
// read in place, next to the serial loop over the same rows; and the same with std::array rows
// in a pmr vector; and both with their results written in place (map_into). The ratio to quote
// is BM_HeapArticleSerial / BM_HeapArticleMap (or ...MapInto) of one run.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <memory_resource>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include "article_workload.hpp"
#include "stats.hpp"

#include "mproc/detail/buffer.hpp"
#include "mproc/mproc.hpp"

namespace {

using Row = std::pmr::vector<int>;
using FixedRow = std::array<int, 6>;

int howmany_within_range(const Row& row) {
  return static_cast<int>(std::count_if(row.begin(), row.end(), [](int v) { return v >= 4 && v <= 8; }));
}
int howmany_within_range_fixed(const FixedRow& row) {
  return static_cast<int>(std::count_if(row.begin(), row.end(), [](int v) { return v >= 4 && v <= 8; }));
}

mproc::Pool& started_pool() {
  static mproc::Pool pool(2);
  return pool;
}

// Made after the pool, as a program that ports the article would.
const std::pmr::vector<Row>& heap_rows() {
  static const std::pmr::vector<Row> rows = [] {
    (void)started_pool();
    std::pmr::vector<Row> out(mproc::shared_resource());
    out.reserve(bench::article_rows().size());
    for (const auto& r : bench::article_rows()) out.emplace_back(r.begin(), r.end());
    return out;
  }();
  return rows;
}

const std::pmr::vector<FixedRow>& heap_fixed_rows() {
  static const std::pmr::vector<FixedRow> rows = [] {
    (void)started_pool();
    std::pmr::vector<FixedRow> out(mproc::shared_resource());
    out.reserve(bench::article_rows().size());
    for (const auto& r : bench::article_rows()) std::copy(r.begin(), r.end(), out.emplace_back().begin());
    return out;
  }();
  return rows;
}

void BM_HeapArticleMap(benchmark::State& state) {
  auto& pool = started_pool();
  const auto& rows = heap_rows();
  auto copied = mproc::heap_stats().maps_copied;
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(howmany_within_range, rows));
  if (mproc::heap_stats().maps_copied != copied) state.SkipWithError("the rows were copied, not read in place");
}
BENCHMARK(BM_HeapArticleMap)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_HeapArticleSerial(benchmark::State& state) {
  const auto& rows = heap_rows();
  for (auto _ : state) benchmark::DoNotOptimize(bench::serial_counts(rows, howmany_within_range));
}
BENCHMARK(BM_HeapArticleSerial)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_HeapArticleMapFixed(benchmark::State& state) {
  auto& pool = started_pool();
  const auto& rows = heap_fixed_rows();
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(howmany_within_range_fixed, rows));
}
BENCHMARK(BM_HeapArticleMapFixed)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_HeapArticleSerialFixed(benchmark::State& state) {
  const auto& rows = heap_fixed_rows();
  for (auto _ : state) benchmark::DoNotOptimize(bench::serial_counts(rows, howmany_within_range_fixed));
}
BENCHMARK(BM_HeapArticleSerialFixed)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same maps with their results written by the workers straight into a result vector in the
// heap (map_into): made once, as a program that maps the rows again and again would keep it.
void BM_HeapArticleMapInto(benchmark::State& state) {
  auto& pool = started_pool();
  const auto& rows = heap_rows();
  std::pmr::vector<int> out(rows.size(), mproc::shared_resource());
  auto placed = mproc::heap_stats().results_placed;
  for (auto _ : state) {
    pool.map_into(howmany_within_range, rows, out);
    benchmark::DoNotOptimize(out.data());
  }
  if (mproc::heap_stats().results_placed == placed) state.SkipWithError("the results were not written in place");
}
BENCHMARK(BM_HeapArticleMapInto)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_HeapArticleMapIntoFixed(benchmark::State& state) {
  auto& pool = started_pool();
  const auto& rows = heap_fixed_rows();
  std::pmr::vector<int> out(rows.size(), mproc::shared_resource());
  for (auto _ : state) {
    pool.map_into(howmany_within_range_fixed, rows, out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_HeapArticleMapIntoFixed)->Unit(benchmark::kMillisecond)->UseRealTime();

// The serial loop writing into a result vector kept warm, the reference for map_into.
void BM_HeapArticleSerialInto(benchmark::State& state) {
  const auto& rows = heap_rows();
  std::vector<int> out(rows.size());
  for (auto _ : state) {
    for (std::size_t i = 0; i < rows.size(); ++i) out[i] = howmany_within_range(rows[i]);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_HeapArticleSerialInto)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same with the function written as a lambda: the worker's loop can inline a lambda, not a
// function it knows only by its address, as the serial loop inlines either (a count over 6 ints
// called out of line costs about twice the inlined one here).
constexpr auto kCountRow = [](const Row& row) { return howmany_within_range(row); };
constexpr auto kCountFixed = [](const FixedRow& row) { return howmany_within_range_fixed(row); };

void BM_HeapArticleMapLambda(benchmark::State& state) {
  auto& pool = started_pool();
  const auto& rows = heap_rows();
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(kCountRow, rows));
}
BENCHMARK(BM_HeapArticleMapLambda)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_HeapArticleMapIntoLambda(benchmark::State& state) {
  auto& pool = started_pool();
  const auto& rows = heap_rows();
  std::pmr::vector<int> out(rows.size(), mproc::shared_resource());
  for (auto _ : state) {
    pool.map_into(kCountRow, rows, out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_HeapArticleMapIntoLambda)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_HeapArticleMapFixedLambda(benchmark::State& state) {
  auto& pool = started_pool();
  const auto& rows = heap_fixed_rows();
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(kCountFixed, rows));
}
BENCHMARK(BM_HeapArticleMapFixedLambda)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_HeapArticleMapIntoFixedLambda(benchmark::State& state) {
  auto& pool = started_pool();
  const auto& rows = heap_fixed_rows();
  std::pmr::vector<int> out(rows.size(), mproc::shared_resource());
  for (auto _ : state) {
    pool.map_into(kCountFixed, rows, out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_HeapArticleMapIntoFixedLambda)->Unit(benchmark::kMillisecond)->UseRealTime();

// --- big payloads (issue 16: apply with a 64 MB argument returning it, next to memcpy) ---------

std::vector<char> echo(std::vector<char> v) { return v; }

// The reference: 128 MB copied between warm buffers (what an apply round trip of 64 MB moves).
void BM_Memcpy128MB(benchmark::State& state) {
  constexpr std::size_t kBytes = std::size_t{128} << 20;
  std::vector<char> from(kBytes, 1), to(kBytes, 2);
  for (auto _ : state) {
    std::memcpy(to.data(), from.data(), kBytes);
    benchmark::DoNotOptimize(to.data());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Memcpy128MB)->Unit(benchmark::kMillisecond)->UseRealTime();

// The other reference: 64 MB of fresh memory (a new std::vector<char>, as apply's caller gets
// each call) touched for the first time, page by page.
void BM_FirstTouch64MB(benchmark::State& state) {
  constexpr std::size_t kBytes = std::size_t{64} << 20;
  for (auto _ : state) {
    std::unique_ptr<char[]> fresh(new char[kBytes]);
    for (std::size_t i = 0; i < kBytes; i += 4096) fresh[i] = 1;
    benchmark::DoNotOptimize(fresh.get());
  }
}
BENCHMARK(BM_FirstTouch64MB)->Unit(benchmark::kMillisecond)->UseRealTime();

// The reference for BM_ApplyBig's first call: every fresh byte that call must fault in, touched
// for the first time page by page. That is the argument's frame and the result's, each a fresh
// 64 MB of the heap (memfd pages: shmem, no huge pages), the worker's decoded argument and the
// parent's result, each a fresh 64 MB std::vector<char>. Mapping pages the other process made
// (each frame, on the reading side) is not counted.
void BM_FirstTouchApplyBigFresh(benchmark::State& state) {
  constexpr std::size_t kBytes = std::size_t{64} << 20;
  auto touch = [](char* p) {
    for (std::size_t i = 0; i < kBytes; i += 4096) p[i] = 1;
    benchmark::DoNotOptimize(p);
  };
  for (auto _ : state) {
    for (int frame = 0; frame < 2; ++frame) {
      const int fd = ::memfd_create("bench-first-touch", MFD_CLOEXEC);
      if (fd < 0 || ::ftruncate(fd, kBytes) != 0) state.SkipWithError("memfd");
      void* p = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      ::close(fd);
      if (p == MAP_FAILED) {
        state.SkipWithError("mmap");
        break;
      }
      touch(static_cast<char*>(p));
      ::munmap(p, kBytes);
    }
    for (int vector = 0; vector < 2; ++vector) {
      std::unique_ptr<char[]> fresh(new char[kBytes]);
      touch(fresh.get());
    }
  }
}
BENCHMARK(BM_FirstTouchApplyBigFresh)->Unit(benchmark::kMillisecond)->UseRealTime();

// Why a big result is read by the thread that waits for it (collect.hpp): a fresh 64 MB,
// committed as the decoder commits the result it returns (mproc::detail::advise_fresh_buffer),
// by a thread on the CPU that freed the last one (same_cpu) or on the other CPU, then filled and
// freed, then 128 MB copied between warm buffers (the rest of an apply round trip). Only the
// commit is timed. On this VM (KVM, virtio-balloon free page reporting) huge pages freed on one
// CPU wait on its per-CPU lists, and the other CPU takes pages from the free lists, some of which
// the host has taken back: committing them costs a host fault per page, and the mean of the
// other-CPU case comes out about twice its median, the same-CPU case's mean equal to its. When
// the pool's result thread read BM_ApplyBig's results, it committed what the caller's thread had
// freed, and BM_ApplyBig's mean strayed from its median. Counter median_ms is the typical commit.
void pin_to_cpu(unsigned cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
}

void BM_CommitFreshAfterFree(benchmark::State& state) {
  const bool same_cpu = state.range(0) == 1;
  if (std::thread::hardware_concurrency() < 2) {
    state.SkipWithError("needs two CPUs");
    return;
  }
  constexpr std::size_t kBytes = std::size_t{64} << 20;
  std::vector<char> source(kBytes, 'x'), warm_from(2 * kBytes, 1), warm_to(2 * kBytes, 2);
  cpu_set_t before;
  ::pthread_getaffinity_np(::pthread_self(), sizeof before, &before);
  pin_to_cpu(0);
  std::vector<double> ms;
  for (auto _ : state) {
    std::unique_ptr<char[]> fresh;
    double took = 0;
    std::thread committer([&] {
      pin_to_cpu(same_cpu ? 0 : 1);
      const auto t0 = std::chrono::steady_clock::now();
      fresh.reset(new char[kBytes]);
      mproc::detail::advise_fresh_buffer(fresh.get(), kBytes);
      took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::memcpy(fresh.get(), source.data(), kBytes);
    });
    committer.join();
    fresh.reset();  // freed on CPU 0
    std::memcpy(warm_to.data(), warm_from.data(), warm_from.size());
    benchmark::DoNotOptimize(warm_to.data());
    state.SetIterationTime(took);
    ms.push_back(took * 1000);
  }
  ::pthread_setaffinity_np(::pthread_self(), sizeof before, &before);
  state.counters["median_ms"] = bench::median(ms);
}
BENCHMARK(BM_CommitFreshAfterFree)
    ->ArgName("same_cpu")
    ->Arg(1)
    ->Arg(0)
    ->Iterations(60)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();

// Minor page faults so far of this process (all its threads) and of its children (the pool's
// workers), from /proc.
struct Faults {
  long here = 0;
  long children = 0;
  [[nodiscard]] long total() const { return here + children; }
};
Faults faults_here_and_in_children() {
  // stat's fields after "pid (comm) ": state ppid pgrp session tty_nr tpgid flags minflt ...
  auto fields_of = [](const std::filesystem::path& stat_path) {
    std::ifstream in(stat_path);
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> fields;
    if (auto close = stat.rfind(')'); close != std::string::npos) {
      std::istringstream rest(stat.substr(close + 2));
      for (std::string f; fields.size() < 8 && rest >> f;) fields.push_back(f);
    }
    return fields;
  };
  const std::string self = std::to_string(::getpid());
  Faults faults;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto fields = fields_of(entry.path() / "stat");
    if (fields.size() != 8) continue;
    if (name == self)
      faults.here += std::stol(fields[7]);
    else if (fields[1] == self)
      faults.children += std::stol(fields[7]);
  }
  return faults;
}

// apply(echo, 64 MB) repeated: the argument and the result cross through the heap. The first
// calls (counter first_ms: the first one, which faults in the heap's fresh blocks) are left out of
// the time.
void BM_ApplyBig(benchmark::State& state) {
  auto& pool = started_pool();
  std::tuple<std::vector<char>> args{std::vector<char>(std::size_t{64} << 20, 'x')};
  auto start = std::chrono::steady_clock::now();
  (void)pool.apply(echo, args);
  state.counters["first_ms"] =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  for (int i = 0; i < 2; ++i) (void)pool.apply(echo, args);
  const Faults faults = faults_here_and_in_children();
  // Each call's time too: on a VM, a call whose fresh result pages the host must fault in takes
  // 3-7 times as long as the others, and a few of those move the mean (median_ms does not).
  std::vector<double> ms;
  ms.reserve(1024);  // no reallocation among the timed calls
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<char> back = pool.apply(echo, args);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (back.size() != std::get<0>(args).size()) state.SkipWithError("wrong size back");
    benchmark::DoNotOptimize(back.data());
  }
  state.counters["median_ms"] = bench::median(ms);
  state.counters["p90_ms"] = bench::p90(ms);
  state.counters["max_ms"] = *std::max_element(ms.begin(), ms.end());
  // Page faults per call in the program and in its workers (a fresh 64 MB is 16384 small pages,
  // 32 huge ones).
  const Faults after = faults_here_and_in_children();
  const auto calls = static_cast<double>(state.iterations());
  state.counters["faults_here_per_call"] = static_cast<double>(after.here - faults.here) / calls;
  state.counters["faults_workers_per_call"] = static_cast<double>(after.children - faults.children) / calls;
  // The heap's pages kept meanwhile, and after the pool was idle 2 s (what comes back).
  state.counters["heap_mapped_MiB"] = static_cast<double>(mproc::heap_stats().mapped >> 20);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  state.counters["heap_mapped_idle_MiB"] = static_cast<double>(mproc::heap_stats().mapped >> 20);
}
BENCHMARK(BM_ApplyBig)->Unit(benchmark::kMillisecond)->UseRealTime();

// A 64 MB heap payload read by a function taking std::span<const char>: only its address
// crosses (next to BM_ApplyBig, where the bytes do).
std::size_t span_tail(std::span<const char> s) { return s.size() + static_cast<unsigned char>(s.back()); }

void BM_ApplySpan64MB(benchmark::State& state) {
  auto& pool = started_pool();
  std::pmr::vector<char> payload(std::size_t{64} << 20, 'x', mproc::shared_resource());
  std::tuple<std::span<const char>> args{payload};
  for (auto _ : state) benchmark::DoNotOptimize(pool.apply(span_tail, args));
}
BENCHMARK(BM_ApplySpan64MB)->Unit(benchmark::kMicrosecond)->UseRealTime();

// A 64 MB item through a Queue to another process, which answers with a small one; next to
// BM_Memcpy64MB. The reader takes each item with get() (a fresh 64 MB vector each time) or, with
// into, keeps one vector and takes each item into it (get_into): each item is then copied twice
// (into its heap block, out of it), into warm memory.
void queue_big(benchmark::State& state, bool into) {
  mproc::Queue<std::vector<char>> items;
  mproc::Queue<int> acks;
  mproc::Process reader([&items, &acks, into] {
    for (std::vector<char> v;;) {
      if (into)
        items.get_into(v);
      else
        v = items.get();
      if (v.empty()) return;
      acks.put(static_cast<int>(v.size() >> 20));
    }
  });
  reader.start();
  std::vector<char> item(std::size_t{64} << 20, 'q');
  items.put(item);  // the first: fresh buffers on both sides
  (void)acks.get();
  const long faults = faults_here_and_in_children().total();
  for (auto _ : state) {
    items.put(item);
    if (acks.get() != 64) state.SkipWithError("wrong size across");
  }
  state.counters["faults_per_item"] =
      static_cast<double>(faults_here_and_in_children().total() - faults) / static_cast<double>(state.iterations());
  items.put({});
  reader.join();
}

void BM_QueueBig(benchmark::State& state) { queue_big(state, false); }
BENCHMARK(BM_QueueBig)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_QueueBigInto(benchmark::State& state) { queue_big(state, true); }
BENCHMARK(BM_QueueBigInto)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Memcpy64MB(benchmark::State& state) {
  constexpr std::size_t kBytes = std::size_t{64} << 20;
  std::vector<char> from(kBytes, 1), to(kBytes, 2);
  for (auto _ : state) {
    std::memcpy(to.data(), from.data(), kBytes);
    benchmark::DoNotOptimize(to.data());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Memcpy64MB)->Unit(benchmark::kMillisecond)->UseRealTime();

// Where the ring stops winning: apply(echo, n bytes) with frames through the ring (arg 0) or
// through the heap (arg 1), n from 16 KiB to 4 MiB. Its own pool: workers inherit the threshold.
// The first calls (fresh heap blocks and buffers) are left out.
void BM_ApplyBytes(benchmark::State& state) {
  std::tuple<std::vector<char>> args{std::vector<char>(static_cast<std::size_t>(state.range(0)), 'x')};
  mproc::detail::set_heap_spill_bytes(state.range(1) ? 1 : SIZE_MAX);
  mproc::Pool pool(1);
  for (int i = 0; i < 5; ++i) (void)pool.apply(echo, args);
  for (auto _ : state) benchmark::DoNotOptimize(pool.apply(echo, args));
  mproc::detail::set_heap_spill_bytes(0);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 2);
}
BENCHMARK(BM_ApplyBytes)
    ->ArgsProduct({{16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 1 << 20, 4 << 20}, {0, 1}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
