// Threads of one program using pools at once: 4 threads submitting to one shared Pool(2)
// (apply_async, map, imap, each tagged with its thread and round), then 4 threads each building,
// using and destroying their own Pool(2) over and over (their workers forked at the same time;
// one thread under AddressSanitizer, see kPoolBuilders). Every result is checked.
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <numeric>
#include <sstream>
#include <thread>

#include <mproc/mproc.hpp>

#include "stress.hpp"

namespace stress {
namespace {

constexpr int kThreads = 4;
// Threads forking their pools' workers while other threads allocate: GCC 12's AddressSanitizer
// allocator is not fork-safe (its locks get pthread_atfork handlers only from LLVM 18,
// llvm/llvm-project#75290), so a worker forked while another thread held one deadlocks at its
// first allocation, inside a task, where no watchdog can tell it from a long one. glibc's malloc
// is fork-safe: the Release and plain tiers build the pools from kThreads threads at once.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kPoolBuilders = 1;
#else
constexpr int kPoolBuilders = kThreads;
#endif

long tag(long x) { return x * 7 + 3; }

// The first wrong result any thread saw, and how many it saw.
class Errors {
 public:
  void add(const std::string& what) {
    std::lock_guard lock(mu_);
    if (count_++ == 0) first_ = what;
  }
  void check(const char* part) const {
    std::lock_guard lock(mu_);
    if (count_) throw Failure(std::string(part) + ": " + std::to_string(count_) + " wrong results, first: " + first_);
  }

 private:
  mutable std::mutex mu_;
  long count_ = 0;     // guarded by mu_
  std::string first_;  // guarded by mu_
};

// One round of one thread on pool: checks every result, counts the tasks.
void round_on(mproc::Pool& pool, long base, Errors& errors, std::atomic<long>& tasks) {
  std::vector<mproc::AsyncResult<long>> single;
  for (long k = 0; k < 200; ++k) single.push_back(pool.apply_async(tag, std::tuple{base + k}));
  std::vector<long> in(500);
  std::iota(in.begin(), in.end(), base + 1000);
  auto mapped = pool.map(tag, in);
  for (std::size_t i = 0; i < in.size(); ++i)
    if (mapped[i] != tag(in[i])) errors.add("map of input " + std::to_string(in[i]));
  std::vector<long> small(in.begin(), in.begin() + 100);
  std::size_t i = 0;
  for (long v : pool.imap(tag, small))
    if (v != tag(small[i++])) errors.add("imap of input " + std::to_string(small[i - 1]));
  for (long k = 0; k < 200; ++k)
    if (single[static_cast<std::size_t>(k)].get(std::chrono::seconds(30)) != tag(base + k))
      errors.add("apply_async of input " + std::to_string(base + k));
  tasks += 200 + 500 + 100;
}

// Runs body(t) on n threads at once; an exception in one is a wrong result.
template <class Body>
void on_threads(int n, Errors& errors, Body body) {
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t)
    threads.emplace_back([&, t] {
      try {
        body(t);
      } catch (const std::exception& e) {
        errors.add(std::string("thread ") + std::to_string(t) + " threw: " + e.what());
      }
    });
  for (auto& th : threads) th.join();
}

void shared_pool(long rounds) {
  phase("4 threads submitting to one pool");
  Errors errors;
  std::atomic<long> tasks{0};
  auto start = std::chrono::steady_clock::now();
  {
    mproc::Pool pool(2);
    on_threads(kThreads, errors, [&](int t) {
      for (long r = 0; r < rounds; ++r) round_on(pool, (t * rounds + r) * 1000000L, errors, tasks);
    });
  }
  figure("shared_tasks", static_cast<double>(tasks));
  figure("shared_s", seconds_since(start));
  errors.check("one pool, 4 threads");
}

void own_pools(long pools) {
  phase(kPoolBuilders == 1 ? "1 thread building its own pools (AddressSanitizer)" : "threads building their own pools");
  Errors errors;
  std::atomic<long> tasks{0};
  auto start = std::chrono::steady_clock::now();
  on_threads(kPoolBuilders, errors, [&](int t) {
    for (long r = 0; r < pools; ++r) {
      mproc::Pool pool(2);
      round_on(pool, (t * pools + r) * 1000000L, errors, tasks);
    }
  });
  figure("own_threads", kPoolBuilders);
  figure("own_pools", static_cast<double>(kPoolBuilders * pools));
  figure("own_tasks", static_cast<double>(tasks));
  figure("own_s", seconds_since(start));
  errors.check("own pools");
}

}  // namespace

bool threads(const Args& args) {
  long rounds = args.count ? args.count : 25;
  return run_scenario(
      args,
      [&] {
        shared_pool(rounds);
        own_pools(rounds);
      },
      180,
      [&](const Outcome& out) {
        std::ostringstream fig;
        fig.precision(3);
        fig << "one Pool(2), 4 threads x " << rounds << " rounds: " << long(out.value("shared_tasks"))
            << " tasks checked in " << out.value("shared_s") << " s; own pools from " << long(out.value("own_threads"))
            << (out.value("own_threads") == 1 ? " thread: " : " threads: ") << long(out.value("own_pools"))
            << " Pool(2)s, " << long(out.value("own_tasks")) << " tasks checked in " << out.value("own_s") << " s";
        return fig.str();
      });
}

}  // namespace stress
