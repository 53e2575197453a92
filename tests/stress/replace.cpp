// A worker killed and replaced 200 times while another thread of the parent holds a mutex and
// allocates in a loop (so that a replacement is often forked while that thread holds the mutex
// or the allocator's locks): every replacement must take its slot and run a task within 10 s.
// A replacement that deadlocks in the child shows as a slot refilled with a pid that never
// answers; its threads and stack are printed.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include <mproc/mproc.hpp>

#include "stress.hpp"

namespace stress {
namespace {

using Clock = std::chrono::steady_clock;

int pid_after_a_moment(int) {
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return ::getpid();
}

// Holds mu and allocates (small, medium and mmap-sized blocks) until stopped.
class Allocator {
 public:
  Allocator()
      : thread_([this] {
          while (!stop_) {
            std::lock_guard lock(mu_);
            std::vector<std::unique_ptr<char[]>> blocks;
            for (std::size_t i = 0; i < 256; ++i) blocks.emplace_back(new char[16 + (i * 97) % 4000]);
            blocks.emplace_back(new char[256 * 1024]);  // past the mmap threshold
            ++rounds_;
          }
        }) {}
  ~Allocator() {
    stop_ = true;
    thread_.join();
  }
  [[nodiscard]] long rounds() const { return rounds_; }

 private:
  std::mutex mu_;
  std::atomic<bool> stop_{false};
  std::atomic<long> rounds_{0};
  std::thread thread_;
};

// The pid in slot, once it is neither 0 nor old; 0 if none within 10 s.
int refilled(mproc::Pool& pool, std::size_t slot, int old) {
  for (auto deadline = Clock::now() + std::chrono::seconds(10); Clock::now() < deadline;) {
    int pid = pool.backend().worker_pids()[slot];
    if (pid != 0 && pid != old) return pid;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return 0;
}

// Whether worker pid, in slot, ran a task within 10 s (tasks go to both workers; wait until one
// lands on it). false at once when the pool has replaced it meanwhile.
bool serves(mproc::Pool& pool, std::size_t slot, int pid) {
  for (auto deadline = Clock::now() + std::chrono::seconds(10); Clock::now() < deadline;) {
    if (pool.backend().worker_pids()[slot] != pid) return false;
    std::vector<mproc::AsyncResult<int>> results;
    for (int k = 0; k < 8; ++k) results.push_back(pool.apply_async(pid_after_a_moment, std::tuple{k}));
    try {
      for (auto& r : results)
        if (r.get(std::chrono::seconds(10)) == pid) return true;
    } catch (const mproc::TimeoutError&) {
      return false;  // a task went to a worker that does not answer
    }
  }
  return false;
}

void replace_run(long count) {
  mproc::Pool pool(2);
  Allocator noise;
  std::vector<double> ms;
  long births_rescued = 0;
  for (long i = 0; i < count; ++i) {
    phase("replacement " + std::to_string(i));
    auto slot = static_cast<std::size_t>(i % 2);
    int victim = pool.backend().worker_pids()[slot];
    if (victim == 0) throw Failure("slot " + std::to_string(slot) + " empty before replacement " + std::to_string(i));
    auto start = Clock::now();
    ::kill(victim, SIGKILL);
    int fresh = refilled(pool, slot, victim);
    if (fresh == 0) throw Failure("replacement " + std::to_string(i) + ": the slot was not refilled within 10 s");
    // A new worker stuck at birth is the pool's to replace (after 2 s without reading its work):
    // under ASan, whose allocator is not fork-safe, a child forked while the noise thread holds
    // the allocator's lock never gets past its first malloc. Follow the slot to its next worker;
    // the pool itself must never stay stuck.
    for (int rescued = 0; !serves(pool, slot, fresh); ++rescued) {
      const int next = refilled(pool, slot, fresh);
      if (next == 0 || rescued == 3) {
        diagnose(fresh, true);
        throw Failure("replacement " + std::to_string(i) + ": the new worker " + std::to_string(fresh) +
                      " ran no task within 10 s, and the pool did not replace it (deadlocked in the child?)");
      }
      fresh = next;
      ++births_rescued;
    }
    ms.push_back(seconds_since(start) * 1000);
  }
  figure("replacements", static_cast<double>(ms.size()));
  figure("median_ms", median(ms));
  figure("max_ms", maximum(ms));
  figure("alloc_rounds", static_cast<double>(noise.rounds()));
  figure("births_rescued", static_cast<double>(births_rescued));
}

}  // namespace

bool replace(const Args& args) {
  long count = args.count ? args.count : 200;
  return run_scenario(
      args, [&] { replace_run(count); }, 180,
      [&](const Outcome& out) {
        std::ostringstream fig;
        fig.precision(3);
        fig << long(out.value("replacements")) << "/" << count
            << " workers killed and replaced, each serving again after median " << out.value("median_ms") << " ms, max "
            << out.value("max_ms") << " ms; meanwhile another thread held a mutex and allocated 257 blocks "
            << long(out.value("alloc_rounds")) << " times; " << long(out.value("births_rescued"))
            << " new workers stuck at birth, replaced by the pool";
        return fig.str();
      });
}

}  // namespace stress
