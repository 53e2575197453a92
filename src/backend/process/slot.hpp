// slot.hpp: what the pieces of a process pool share: the memory each worker shares with the
// parent (PoolShared, SlotShared), the parent's view of a worker (Slot), the pool's life
// (PoolState), and the worker's entry (run_worker). A chunk on its way is a Record (chunk_book.hpp).
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/process/channel.hpp"
#include "mproc/detail/chunk_book.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/pool_options.hpp"
#include "os/os.hpp"

namespace mproc::detail {

// Shared with the workers: one per pool.
struct PoolShared {
  alignas(64) Bell doorbell;  // the result thread sleeps here; workers ring it after a result
  // 1 while chunks wait in the parent for room in a worker's window (Dispatcher): then every
  // result is told at once, for the parent to send more. Written by the parent on a change only.
  alignas(64) std::atomic<std::uint32_t> backlog{0};
};

// Shared with one worker: its bell, what it runs now, and its two rings' headers.
struct SlotShared {
  alignas(64) Bell task_bell;                             // the worker sleeps here while it has no task
  alignas(64) std::atomic<std::uint64_t> started_seq{0};  // the chunk it runs or last ran
  std::atomic<std::int64_t> started_ns{0};                // when it started it (now_ns())
  // The last chunk the worker claimed to run, or kRevoked | R: chunks up to R taken back by the
  // parent, which the worker skips. Both sides CAS it, so a chunk is either run or taken back.
  // Its seq part never decreases (the parent's R included: Dispatcher::revoke).
  std::atomic<std::uint64_t> claim{0};
  // Under PoolOptions::memory_limit with RLIMIT_DATA: the chunk that was running when an
  // allocation failed past the limit, and the memory the worker used then (memory_limit.hpp).
  std::atomic<std::uint64_t> memory_failed_seq{0};
  std::atomic<std::uint64_t> memory_used{0};
  RingHeader task_header;
  RingHeader result_header;
  // The heap block holding the result frame the worker writes or has sent as a spill note and
  // the parent has not yet taken (nullptr: none). Whoever takes it clears it first: the parent
  // on reading its note, or the watcher when the worker died with it (so it is freed once).
  std::atomic<void*> result_block{nullptr};
};

// Message sequence numbers: 0 is a control message (the worker's hello; the parent's stop).
constexpr std::uint64_t kControlSeq = 0;
constexpr std::uint64_t kRevoked = std::uint64_t{1} << 63;  // in SlotShared::claim
constexpr std::int64_t kUnstamped = 0;                      // Slot::progress_ns not yet read from a clock

// The worker's side of SlotShared::claim: whether it may run chunk seq.
bool claim_chunk(std::atomic<std::uint64_t>& claim, std::uint64_t seq) noexcept;

struct Slot {
  unsigned id = 0;  // its worker_id(), kept by every worker that fills the slot
  SlotShared* shared = nullptr;
  Ring tasks;    // parent -> worker
  Ring results;  // worker -> parent
  pid_t pid = 0;
  os::Fd pidfd;
  // This slot's entry in the program's guard process: the worker's process group while it lives
  // (0 before, and once it is reaped), which the guard kills when the program dies (guard.hpp).
  std::atomic<pid_t>* group = nullptr;
  bool alive = false;                // guarded by PoolState::mu
  long chunks_sent = 0;              // since spawned; guarded by PoolState::mu
  std::deque<Record> inflight;       // sent, result not yet read, in order; guarded by PoolState::mu
  std::atomic<bool> dead{false};     // set by the watcher as soon as it sees the exit
  std::uint64_t timed_out_seq = 0;   // the chunk it was killed for running too long; guarded by PoolState::mu
  std::uint64_t terminated_seq = 0;  // the chunk a future's terminate() killed it for; guarded by PoolState::mu
  std::int64_t progress_ns = 0;      // while it has work: when it started its current chunk,
                                     // or was given work idle; kUnstamped until the watcher's
                                     // next look (Watcher::stamp_progress); guarded by PoolState::mu
  bool stalled = false;              // its unstarted chunks were taken back: no more until it
                                     // shows progress; guarded by PoolState::mu
  Writer inbox;                      // used only by the thread holding the collecting role
};

using Slots = std::vector<std::unique_ptr<Slot>>;

// The chunk in flight on slot that its worker runs now (or ran last), or nullptr when it has
// started none of them. Not always the oldest: results of a batch (TaskHeader::batch) may wait
// unread while the worker runs the next. Under PoolState::mu.
const Record* started_chunk(const Slot& slot) noexcept;
// The worker's side of a batch (TaskHeader::batch; Dispatcher): whether the parent may learn of
// the result of the chunk of batch it ran later. The next chunk, already in its ring, is of the
// same batch, and no work waits in the parent for a worker (PoolShared::backlog). The parent is
// then told with the batch's last result here, or before the worker waits for work.
bool tell_later(const Slot& slot, const PoolShared& pool, std::uint64_t batch) noexcept;

inline bool none_alive(const Slots& slots) {
  return std::none_of(slots.begin(), slots.end(), [](const auto& s) { return s->alive; });
}
// Kills a live worker and its process group (the task's children); under PoolState::mu.
void kill_worker(const Slot& slot);
void kill_all(const Slots& slots);  // under PoolState::mu

// The pool's life, which its pieces share. Its mutex also guards the parent's side of every
// Slot, the Dispatcher, and the phase and count of the pool's ChunkBook.
struct PoolState {
  mutable std::mutex mu;
  std::condition_variable changed;  // work finished or a worker exited; with mu
  bool stopping_workers = false;    // guarded by mu: no more respawns
  int init_failures = 0;            // initializer failures in a row; guarded by mu
  std::exception_ptr init_error;    // the last of them; guarded by mu
};

// What a worker needs after the fork.
struct WorkerContext {
  Slot* slot;
  PoolShared* pool;
  const PoolOptions* options;
  pid_t parent;
  int watchdog;           // read end of a pipe whose write end only the parent holds: EOF = parent gone
  int memory_group = -1;  // the cgroup.procs of the worker's cgroup (memory_limit.hpp), or -1
};
[[noreturn]] void run_worker(const WorkerContext& ctx) noexcept;

}  // namespace mproc::detail
