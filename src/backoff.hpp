// backoff.hpp: WaitPolicy and Backoff — how every wait in mproc spins before it sleeps — and the
// named policy of each waiter, side by side so that their tuning can be compared.
//
// A waiter looks at its condition, and after each look that found nothing calls
// Backoff::pause(): a CPU pause while it may spin as if it had its CPU to itself, then a yield
// between looks (the pools run more threads than there are CPUs: workers, the caller, a result
// thread, and a spinner would keep a CPU from one that has work to do; sched_yield returns at once
// when no other thread wants the CPU), then pause() returns false and the waiter sleeps its own
// way (a futex, a Bell, a condition variable), at most WaitPolicy::sleep at a time. A waiter with
// nothing to sleep on (an MPI probe) naps instead: pause() sleeps and keeps returning true.
#pragma once

#include <chrono>
#include <thread>

#include "mproc/detail/wait.hpp"
#include "os/os.hpp"

namespace mproc::detail {

struct WaitPolicy {
  Nanos alone;                // spins with CPU pauses between looks this long...
  Nanos spin;                 // ...then yields between looks until this long (>= alone), then sleeps:
  Nanos sleep;                // one sleep lasts at most this long before the next look
  bool naps = false;          // pause() sleeps itself past spin, rather than return false
  unsigned check_every = 64;  // looks between readings of the clock; a power of two
};

class Backoff {
 public:
  // The spin's time counts from its first reading of the clock, check_every looks in: a wait
  // that ends sooner (most do, on a hot path) reads no clock at all.
  explicit Backoff(const WaitPolicy& policy, const Deadline& deadline = std::nullopt) noexcept
      : policy_(policy), deadline_(deadline) {}

  // After a look that found nothing: waits before the next look. false: stop spinning and sleep,
  // or the deadline has passed (noticed within check_every looks); false again at every later
  // call, until restart().
  bool pause() {
    if ((++looks_ & (policy_.check_every - 1)) != 0) {
      os::cpu_relax();
      return true;
    }
    return pause_and_check();
  }
  // The thing waited for came (a waiter that waits again spins its full time again).
  void restart() noexcept {
    start_ = kNotStarted;
    looks_ = 0;
  }

 private:
  bool pause_and_check() {
    const auto now = Clock::now();
    if (start_ == kNotStarted) start_ = now;
    const auto spun = now - start_;
    if (deadline_ && now >= *deadline_) return stop();
    if (spun < policy_.alone)
      os::cpu_relax();
    else if (spun < policy_.spin)
      std::this_thread::yield();
    else if (policy_.naps)
      std::this_thread::sleep_for(policy_.sleep);
    else
      return stop();
    return true;
  }
  // Once over, the spin stays over until restart(): the next pause() checks the clock again.
  bool stop() noexcept {
    --looks_;
    return false;
  }

  static constexpr Clock::time_point kNotStarted{};  // the clock's epoch: never a reading of it

  WaitPolicy policy_;
  Deadline deadline_;
  Clock::time_point start_ = kNotStarted;
  unsigned looks_ = 0;
};

// --- the waiters ---------------------------------------------------------------------------
namespace waits {
using namespace std::chrono_literals;

// A spin up to this long costs little even when the CPU is shared: results that close are
// caught without a system call, and no thread is kept waiting long for the CPU.
inline constexpr Nanos kSpinAlone = 5us;

// A job's waiter that sleeps (JobBase::wait_plain): hosts that expect a result soon have spun
// already, and one that chose to sleep may share its CPU with the worker it waits for.
inline constexpr WaitPolicy kJob{kSpinAlone, kSpinAlone, kInterruptCheck};

// ThreadPool. The next task is often a moment away, so an idle worker (one at a time) looks
// again for a while before it sleeps; its futex sleep is bounded by a safety net, not the wake-up
// path. A caller outside the pool watches its job the same way before it sleeps.
inline constexpr WaitPolicy kThreadIdleWorker{kSpinAlone, 50us, 100ms, false, 16};
inline constexpr WaitPolicy kThreadCaller{kSpinAlone, 50us, kJob.sleep};  // then sleeps as kJob
// A worker waiting on a job: runs other tasks, and looks for new ones this often.
inline constexpr WaitPolicy kThreadHelper{0us, 0us, 200us};

// Process pool. A caller collects results itself this long before it sleeps; the result thread
// spins this long when idle (its sleep a safety net); a worker waits this long for the next task,
// checking on its parent between sleeps; a reader of a message spins for the rest of it, as does
// a writer waiting for room in the ring.
inline constexpr WaitPolicy kProcessCaller{100us, 100us, 10ms};
inline constexpr WaitPolicy kProcessResultThread{20us, 20us, 100ms};
inline constexpr WaitPolicy kProcessWorker{kSpinAlone, 200us, 100ms};
inline constexpr WaitPolicy kProcessMessage{kSpinAlone, 50us, 10ms};
inline constexpr WaitPolicy kProcessRingSpace{kSpinAlone, 20us, 10ms};

// Queue: getters and putters spin on the queue, then sleep on its sequence word until woken or
// their deadline.
inline constexpr WaitPolicy kQueue{30us, 30us, Nanos::max()};

// MPI. Nothing to sleep on (a probe), so these nap; the ranks may share cores. A short yield
// phase matters when they do: sched_yield often hands the core straight back, so a yielding
// thread still takes it from the worker ranks. With 3 ranks on 2 cores, 200 us rather than 2 ms
// of yielding took map's cost per task at chunksize 1000 from 0.038 to 0.030 us and at chunksize
// 1 from 2.9 to 1.8 us (medians of 10 interleaved runs), apply's round trip unchanged.
// The communication thread, with chunks in flight and nothing arriving:
inline constexpr WaitPolicy kMpiComm{20us, 200us, 50us, true, 1};
// A rank waiting for a message (a reply microseconds away, or the next task):
inline constexpr WaitPolicy kMpiRank{50us, 500us, 200us, true, 16};

}  // namespace waits
}  // namespace mproc::detail
