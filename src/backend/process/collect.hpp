// collect.hpp: Collector — who reads a process pool's results, and when.
//
// Results are read by whichever thread holds the collecting role (role_mu_): the pool's result
// thread, or a caller waiting for a result, which then needs no wake-up from another thread. A
// result that completes a job with callbacks is deferred to the result thread, which runs the
// callbacks without the role, one at a time. The chunks whose results the role's holder read
// count as ended (the pool's join() waits for that) at its next result or before it lets the role
// go or sleeps (CollectorHost::settle): a stream of results takes the pool's lock once a result.
//
// States of the role and their transitions:
//   result thread collects  the result thread holds the role and drains the rings, spinning for
//                           a while after each result (spin_worthwhile: not while no chunk is
//                           out, as when the pool has just started), then:
//     -> result thread asleep  it arms the doorbell, finds no result and no deferred completion
//                              after arming (else disarms and goes on), releases the role and
//                              sleeps on the doorbell (100 ms at most).
//     -> callbacks run         a completion was deferred: it releases the role, runs them, and
//                              takes the role back (a callback may wait like any caller).
//   result thread asleep
//     -> result thread collects  a worker rings the doorbell after a result (of a batch, its
//                                last: dispatch.hpp), wake() rings it
//                                (stop, a death, a deferred completion), or the sleep ends; it
//                                takes the role back, blocking while a waiter holds it.
//     -> waiter collects       a caller in wait() takes the role (try_lock: never waits for it)
//                              when spinning is worthwhile, and disarms the doorbell: workers need
//                              not ring it while a thread spins on the rings.
//   waiter collects         it drains until its job is satisfied or its spin (100 us) or
//                           deadline ends, then release_role(): arms the doorbell first, so that
//                           from then on a result wakes the result thread, and wakes it itself
//                           if a result or deferred completion arrived meanwhile. -> asleep.
//   callback waits          a callback (on the result thread) waiting on its own pool collects
//                           itself (collect_until), holding the role, sleeping on the doorbell
//                           without it; a callback never waits while holding the role (logic_error).
//   watcher reads a dead worker's last results: takes the role (drain_dead), blocking, having
//                           asked for it first (watcher_wants_): every holder hands it over at
//                           its next look (after the message it reads) and lets it go first.
//                           A mutex is not fair: holders that release and retake it within
//                           microseconds while results keep coming (the result thread between
//                           doorbell rings, a caller between get()s) would keep the watcher, and
//                           with it the dead worker's lost chunk, its replacement and join(),
//                           waiting for as long as results come.
//   stopped                 after stop(), the result thread leaves once no completion is deferred,
//                           and then waits until every read it handed over is done (close_handing).
//
// Big results are read where they are used. A result frame in the heap (a spill note: 256 KB or
// more) for a job whose caller sleeps in wait() (JobBase::wait_working, after its spin) is not
// read by the role's holder: it hands the frame to that caller (JobBase::hand_to_waiter), which
// reads it on its own thread, without the role, and lets go of the collector once the job is
// marked done (HandedWork::release), before the job's done callbacks, which may end the pool. The
// fresh memory the result is decoded into is then committed by the thread that freed the last
// one, on its CPU, and the role's holder goes on reading other results meanwhile. The chunk
// counts as ended when handed over; the pool's threads are not stopped (join() returns) before
// every handed read is done.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>

#include "backend/process/slot.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/wire.hpp"

namespace mproc::detail {

// What the collector reports to the pool, and asks it.
class CollectorHost {
 public:
  virtual void on_hello(const std::exception_ptr& error) = 0;  // null: the initializer ran
  // The chunk a result is for (nullopt: it was dropped); its results are read next.
  virtual std::optional<Record> on_result(Slot& slot, const ResultHeader& header) = 0;
  // Its results were read. The chunk counts as ended at the next on_result() or settle(), under
  // one lock with it: a stream of results takes the pool's lock once a result, not twice.
  virtual void on_results_read(Record record) = 0;
  // Counts the chunks read since as ended. The role's holder calls it before it stops collecting
  // (sleeps, hands the role over or lets it go): join() waits for the count.
  virtual void settle() = 0;
  // What the worker measured of a chunk, before its results are read (insights only).
  virtual void on_chunk_timing(Slot& slot, const Record& record, const ChunkTiming& timing) = 0;
  [[nodiscard]] virtual bool spin_worthwhile(Nanos budget) = 0;

 protected:
  ~CollectorHost() = default;
};

class Collector {
 public:
  Collector(PoolShared& pool, const Slots& slots, CollectorHost& host) : pool_(pool), slots_(slots), host_(host) {}

  // JobHost's: waits for job, collecting meanwhile when worthwhile.
  bool wait(JobBase& job, const Deadline& deadline);
  // JobHost's: a job completed; its callbacks run on the result thread.
  void defer_completion(std::shared_ptr<JobBase> job);
  // The result thread's loop; returns once stop() was called and no completion is deferred.
  void run();
  void stop() noexcept;
  void wake() noexcept;  // wakes the result thread
  // For the watcher: reads what a dead worker sent before it died, holding the role.
  void drain_dead(Slot& slot);
  // For the pool's constructor, holding role() since before any worker started: waits for the
  // slot's hello and handles it; throws when the worker exits first.
  void receive_hello(Slot& slot);
  [[nodiscard]] std::mutex& role() noexcept { return role_mu_; }
  // Result frames carry a ChunkTiming (PoolOptions::insights); set before any worker starts.
  void set_timed(bool timed) noexcept { timed_ = timed; }

 private:
  class TakenBlock;
  class HandedRead;

  bool drain();  // holds the role; returns whether anything was read
  bool drain_slot(Slot& slot);
  void handle_message(Slot& slot);
  // Reads a result frame in the heap, or hands its reading to a thread waiting for its job.
  void read_frame_in_heap(TakenBlock block, const Reader& rest, const Record& record);
  void handed_read_released() noexcept;  // a HandedRead is done with this collector
  void close_handing() noexcept;         // waits for every HandedRead's release; none is handed after
  bool any_results() const noexcept;
  void run_deferred();
  void release_role() noexcept;  // hands collecting back to the result thread
  [[nodiscard]] bool watcher_waits() const noexcept { return watcher_wants_.load(std::memory_order_relaxed) != 0; }
  void yield_to_watcher(std::unique_lock<std::mutex>& role);   // the result thread's hand-over
  bool collect_until(JobBase& job, const Deadline& deadline);  // the result thread's own waits

  PoolShared& pool_;
  const Slots& slots_;
  CollectorHost& host_;
  std::mutex role_mu_;  // held by whoever reads the result rings: the result thread or a waiter
  std::mutex deferred_mu_;
  std::deque<std::shared_ptr<JobBase>> deferred_;  // completions for a pool thread; guarded by deferred_mu_
  std::atomic<bool> has_deferred_{false};
  std::atomic<bool> stop_{false};
  bool timed_ = false;
  std::atomic<std::uint32_t> watcher_wants_{0};  // 1 while the watcher waits for the role (a futex word)
  std::mutex handed_mu_;
  std::condition_variable handed_cv_;
  std::size_t handed_ = 0;       // HandedReads not yet released; guarded by handed_mu_
  bool handing_closed_ = false;  // the result thread left: nothing is handed; guarded by handed_mu_
};

// For tests: called by the role's holder after each result message it reads (simulates a holder
// slowed by a loaded machine).
extern void (*result_read_hook)() noexcept;

}  // namespace mproc::detail
