// chunk_book.hpp: ChunkBook — what the backends that send chunks as bytes (ProcessBackend,
// MpiBackend) keep about them: a chunk on its way (Record), the spare buffers chunks are encoded
// into, the pool's phase and why it cannot run work, the count of chunks not yet ended, their
// numbering, and how far ahead of its work a worker is fed (the window, from the chunks' moving
// average run time). ChunkSink is the one thing a backend's core adds: where a chunk goes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "mproc/detail/buffer.hpp"
#include "mproc/detail/insights_recorder.hpp"
#include "mproc/detail/invoke.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/wire.hpp"

namespace mproc::detail {

// A chunk of a job on its way: queued, or in flight on a worker. What is the same for every chunk
// of a call (its time limit, its retries, its number for insights) is read from its job: a pool
// keeps hundreds of thousands of these queued (apply_async in a loop), and their size is what it
// walks through (88 bytes; 5d4f498's, 72 bytes, padded to 128 ran apply_async x300000 13% slower).
struct Record {
  std::shared_ptr<JobBase> job;
  std::size_t first = 0;
  std::size_t count = 0;
  Writer task;                  // its task frame (wire.hpp), kept until its result arrives
  ResultReader read = nullptr;  // reads its results into job, knowing their type
  std::uint64_t seq = 0;        // its number, once sent (ChunkBook::number)
  int attempts = 0;             // times it was started and lost so far
};
static_assert(sizeof(Record) <= 88, "Record: what is the same for a call's chunks belongs in its job");

// Where a backend's core takes a chunk in. Throws PoolNotRunning when the pool takes no work.
class ChunkSink {
 public:
  // kind: its call's (call_kind), for insights.
  virtual void enqueue(Record record, const char* kind) = 0;

 protected:
  ~ChunkSink() = default;
};

// One per pool, owned by its core. Three kinds of members, each safe from its own threads:
// submit() and recycle() from any thread (the spare buffers have their own mutex); the phase and
// the count under the core's lock (PoolState::mu; MpiPoolCore::mu_); number(), chunk_took() and
// window() by whoever matches results to chunks, serialised by the core (under PoolState::mu; the
// MPI communication thread). outstanding() and avg_chunk_ns() may also be read from any thread
// without the lock, as estimates (a waiter deciding whether to spin).
class ChunkBook {
 public:
  // How many chunks a worker is given ahead of the one it runs: enough to cover queue_ahead_ns
  // of work at the chunks' average run time, within [min_window, max_window]; first_window
  // before any chunk has been timed.
  struct Pace {
    double queue_ahead_ns;
    std::size_t first_window;
    std::size_t min_window;
    std::size_t max_window;
  };

  // pool_name: as messages name the pool ("Pool", "MpiPool").
  ChunkBook(ChunkSink& sink, Pace pace, const char* pool_name) : sink_(sink), pace_(pace), pool_name_(pool_name) {}
  ChunkBook(const ChunkBook&) = delete;
  ChunkBook& operator=(const ChunkBook&) = delete;

  // --- any thread ---
  // Encodes the tasks of items[first ..] into a spare buffer, names their code with rename (when
  // given: MPI's offsets in modules), and hands the chunk to the sink. A chunk that cannot be
  // encoded fails its items here; the pool goes on.
  template <Style S, template <class> class Job, class R, class Fn, class Item>
  void submit(const std::shared_ptr<Job<R>>& job, const Fn& fn, std::span<const Item> items, std::size_t first,
              void (*rename)(Writer&) = nullptr);
  // As submit, for items every worker reads where they are: only their address is encoded.
  template <Style S, template <class> class Job, class R, class Fn, class Item>
  void submit_in_place(const std::shared_ptr<Job<R>>& job, const Fn& fn, std::span<const Item> items,
                       std::size_t first);
  // Keeps a chunk's buffer, its capacity with it, for a later chunk: fresh large buffers cost a
  // page fault per 4 KiB, more than encoding into them.
  void recycle(Writer buffer) noexcept;
  // From now on chunks past heap_spill_bytes() are encoded into the shared heap and cross as
  // their address (spill notes, wire.hpp): for a backend whose workers map the heap. Before the
  // first submit.
  // And results that a job wants in the heap (TypedJob::destination) are written there by the
  // workers themselves.
  void spill_tasks_to_heap() noexcept { spill_tasks_ = true; }
  // Chunks a cancel took out before they were sent: their buffers kept, their items failed with
  // CancelledError. Outside the core's lock: their jobs' completions may run callbacks.
  void fail_cancelled(std::span<Record> records);

  // --- under the core's lock ---
  void check_running() const;   // throws PoolNotRunning: closed, terminated, or broken
  void check_joinable() const;  // throws std::logic_error while running: join() needs close() first
  void close() noexcept;        // running -> closed; otherwise nothing
  void terminate() noexcept { phase_ = Phase::terminated; }
  void set_broken(std::string why) { broken_ = std::move(why); }
  [[nodiscard]] const std::string& broken() const noexcept { return broken_; }
  [[nodiscard]] bool running() const noexcept { return phase_ == Phase::running; }
  [[nodiscard]] bool terminated() const noexcept { return phase_ == Phase::terminated; }
  void opened() noexcept { set_outstanding(outstanding() + 1); }  // a chunk taken in
  // Chunks ended (results read, or failed); returns whether none is outstanding now.
  bool ended(std::size_t chunks = 1) noexcept {
    set_outstanding(outstanding() - chunks);
    return outstanding() == 0;
  }
  [[nodiscard]] std::size_t outstanding() const noexcept { return outstanding_.load(std::memory_order_relaxed); }
  // What join() waits for: every chunk ended, or the pool terminated.
  [[nodiscard]] bool settled() const noexcept { return outstanding() == 0 || terminated(); }

  // --- by whoever matches results to chunks ---
  void number(Record& record);  // the next seq, in the record and its task frame
  void chunk_took(std::int64_t ns) noexcept;
  [[nodiscard]] std::size_t window() const noexcept;
  [[nodiscard]] double avg_chunk_ns() const noexcept { return avg_chunk_ns_.load(std::memory_order_relaxed); }

 private:
  enum class Phase { running, closed, terminated };

  Writer take_buffer();
  // Written under the core's lock only, so a plain store (no atomic read-modify-write) suffices.
  void set_outstanding(std::size_t n) noexcept { outstanding_.store(n, std::memory_order_relaxed); }
  // Where the workers write the results of job's items from first on themselves, or nullptr.
  template <class R>
  R* destination(TypedJob<R>& job, std::size_t first) noexcept {
    if constexpr (placeable_v<R>) {
      R* dest = spill_tasks_ ? job.destination(first) : nullptr;  // workers that map the heap
      if (dest && first == 0) note_results_placed();              // once a call
      return dest;
    } else {
      return nullptr;
    }
  }

  ChunkSink& sink_;
  const Pace pace_;
  const char* pool_name_;

  std::mutex buffers_mu_;
  std::vector<Writer> buffers_;  // spare chunk buffers; guarded by buffers_mu_
  bool spill_tasks_ = false;     // set once, before the first submit

  Phase phase_ = Phase::running;             // under the core's lock
  std::string broken_;                       // why the pool cannot run work, if it cannot; under the core's lock
  std::atomic<std::size_t> outstanding_{0};  // chunks taken in and not yet ended; written under the core's lock

  std::uint64_t next_seq_ = 1;           // by whoever matches results
  std::atomic<double> avg_chunk_ns_{0};  // moving average of a chunk's run time; written by whoever matches results
};

// The error of each chunk terminate() drops.
[[nodiscard]] std::exception_ptr terminated_error();

// A future's cancel, on a backend's queue of chunks not yet sent: takes out job's, in order, in
// one pass that keeps the order of the rest. A job of one chunk (submit, apply_async) is looked
// for from both ends of the queue at once, so that cancelling many futures in the order they
// were made (or the reverse) costs no walk through the rest.
[[nodiscard]] std::vector<Record> take_chunks_of(std::deque<Record>& queue, const JobBase& job);

// A backend's shutdown(), for destructors: close() and join(), or terminate() when join throws.
template <class Core>
void close_and_join(Core& core) noexcept {
  try {
    core.close();
    core.join();
  } catch (...) {
    core.terminate();
  }
}

template <Style S, template <class> class Job, class R, class Fn, class Item>
void ChunkBook::submit(const std::shared_ptr<Job<R>>& job, const Fn& fn, std::span<const Item> items, std::size_t first,
                       void (*rename)(Writer&)) {
  Writer task = take_buffer();
  try {
    encode_task<S>(task, fn, items, destination(*job, first));
    if (rename) rename(task);
  } catch (...) {
    // The arguments cannot be sent: these tasks fail, the pool goes on.
    job->fail(first, items.size(), std::current_exception());
    return;
  }
  sink_.enqueue(Record{job, first, items.size(), std::move(task), &read_results_of<R>}, call_kind<S>(*job));
}

template <Style S, template <class> class Job, class R, class Fn, class Item>
void ChunkBook::submit_in_place(const std::shared_ptr<Job<R>>& job, const Fn& fn, std::span<const Item> items,
                                std::size_t first) {
  Writer task = take_buffer();
  encode_task_in_place<S>(task, fn, items, destination(*job, first));
  sink_.enqueue(Record{job, first, items.size(), std::move(task), &read_results_of<R>}, call_kind<S>(*job));
}

}  // namespace mproc::detail
