// The worker process's side of a process pool: after the fork, read chunks, run them, send
// results, until told to stop, the parent disappears, or maxtasksperchild is reached.
#include <signal.h>

#include "backend/process/memory_limit.hpp"
#include "backend/process/slot.hpp"
#include "mproc/detail/wire.hpp"
#include "os/os.hpp"
#include "worker_identity.hpp"

namespace mproc::detail {
namespace {

constexpr std::int64_t kSpareIdleNs = 1'000'000'000;

// Runs the initializer and tells the parent how it went; a worker whose initializer threw exits.
void say_hello(Slot& slot, const PoolOptions& options, const GiveUp& parent_gone) {
  std::exception_ptr error;
  try {
    options.initializer();
  } catch (...) {
    error = std::current_exception();
  }
  Writer out;
  begin_result_frame(out);
  write_hello(out, error);
  end_result_frame(out, ResultHeader{.seq = kControlSeq});
  slot.results.send(out.bytes(), {}, parent_gone);
  if (error) {
    os::flush_stdio();
    os::exit_now(1);
  }
}

// Sends a result frame; one in the heap crosses as a spill note, and its block becomes the
// parent's (out is empty afterwards, its next large frame takes a block of its own).
void send_result(Slot& slot, Writer& out, const GiveUp& parent_gone, Wake wake) {
  SpillNote note;
  slot.results.send(ring_message(out, note), {}, parent_gone, wake);
  out.release_heap();
}

// When a chunk began, when the worker's previous one ended, when it was ready for work, and its
// process id (read once: getpid() is a system call).
struct TimedSpan {
  std::int64_t start_ns, idle_from_ns, ready_ns;
  int pid;
};

// Runs a chunk timing its tasks (PoolOptions::insights): its result frame carries a ChunkTiming.
// Returns when the chunk ended.
std::int64_t run_timed(Reader& in, Writer& out, std::uint64_t seq, TimedSpan span) {
  begin_result_frame(out, true);
  ItemClock clock(span.start_ns);
  t_item_clock = &clock;
  run_chunk(in, out);
  t_item_clock = nullptr;
  ChunkTiming timing{.start_ns = span.start_ns,
                     .end_ns = now_ns(),
                     .idle_ns = span.start_ns - span.idle_from_ns,
                     .ready_ns = span.ready_ns,
                     .pid = span.pid};
  take_item_times(timing, clock);
  end_result_frame(out, ResultHeader{.seq = seq, .took_ns = timing.end_ns - span.start_ns});
  write_chunk_timing(out, timing);
  return timing.end_ns;
}

}  // namespace

void (*worker_start_hook)() noexcept = nullptr;

bool tell_later(const Slot& slot, const PoolShared& pool, std::uint64_t batch) noexcept {
  TaskHeader next;
  return batch != 0 && pool.backlog.load(std::memory_order_relaxed) == 0 &&
         slot.tasks.peek({reinterpret_cast<std::byte*>(&next), sizeof next}) && next.batch == batch;
}

bool claim_chunk(std::atomic<std::uint64_t>& claim, std::uint64_t seq) noexcept {
  std::uint64_t word = claim.load(std::memory_order_acquire);
  do {
    if ((word & kRevoked) && seq <= (word & ~kRevoked)) return false;
  } while (!claim.compare_exchange_weak(word, seq, std::memory_order_acq_rel, std::memory_order_acquire));
  return true;
}

void run_worker(const WorkerContext& ctx) noexcept {
  try {
    // The worker leads a process group (the parent makes it so too, for a kill that comes first):
    // a task's children join it, and end with the worker, killed by the pool with the group.
    os::lead_process_group(0);
    if (ctx.options->memory_limit) limit_worker_memory(*ctx.slot->shared, *ctx.options->memory_limit, ctx.memory_group);
    // The parent's death ends the worker: at once by signal, or at its next idle wake-up.
    os::set_parent_death_signal(SIGKILL);
    if (os::getppid() != ctx.parent) os::exit_now(1);
    become_pool_worker(ctx.slot->id, ctx.parent);
    if (worker_start_hook) worker_start_hook();
    os::ignore_signal(SIGINT);  // Ctrl-C is the parent's to handle; workers must not each report it
    Slot& slot = *ctx.slot;
    // PR_SET_PDEATHSIG is the first sign of the parent's death; these are the second, for when
    // it cannot fire (the parent was not the thread that forked, or the signal was lost).
    GiveUp parent_gone = [&ctx] { return os::getppid() != ctx.parent || os::hung_up(ctx.watchdog); };
    if (ctx.options->initializer) say_hello(slot, *ctx.options, parent_gone);

    const long max_tasks = ctx.options->maxtasksperchild.value_or(0);
    const bool insights = ctx.options->insights;
    const std::int64_t ready_ns = now_ns();
    // The end of its last chunk (read with its run time, no clock of its own): for insights, and
    // for the spare buffers below.
    std::int64_t last_end = ready_ns;
    const int pid = insights ? os::getpid() : 0;
    Writer inbox, out;
    out.spill_to_heap(&slot.shared->result_block);
    // Waiting for a task: big buffers kept for reuse (keep_spare) go once idle a second.
    GiveUp waiting = [&parent_gone, &last_end] {
      if (spares_held() && now_ns() - last_end > kSpareIdleNs) release_spares();
      return parent_gone();
    };
    // Whether a result was sent without waking the parent, which must then be woken before this
    // worker waits for work (the next chunk of its batch may have been taken back) or leaves.
    bool owe_wake = false;
    for (long done = 0;;) {
      if (owe_wake && !slot.tasks.has_message()) {
        ctx.pool->doorbell.ring();
        owe_wake = false;
      }
      slot.tasks.receive(inbox, waits::kProcessWorker, waiting);
      const std::optional<SpillNote> note = read_spill_note(inbox.bytes());
      // A chunk whose frame lies in the heap is big: its result is told at once (batch 0).
      const TaskHeader header = note ? TaskHeader{.seq = note->seq} : read_task_header(inbox.bytes());
      const std::uint64_t seq = header.seq;
      if (seq == kControlSeq) break;
      // Claimed before a spilled frame is read: once taken back, its block may be another's.
      if (!claim_chunk(slot.shared->claim, seq)) continue;  // taken back for another worker
      Reader in(task_chunk(note ? note->frame() : inbox.bytes()));
      std::int64_t start = now_ns();
      slot.shared->started_ns.store(start, std::memory_order_relaxed);
      slot.shared->started_seq.store(seq, std::memory_order_release);

      if (insights) [[unlikely]] {
        last_end = run_timed(in, out, seq, TimedSpan{start, last_end, ready_ns, pid});
      } else {
        begin_result_frame(out);
        run_chunk(in, out);
        last_end = now_ns();
        end_result_frame(out, ResultHeader{.seq = seq, .took_ns = last_end - start});
      }
      owe_wake = tell_later(slot, *ctx.pool, header.batch);
      send_result(slot, out, parent_gone, owe_wake ? Wake::later : Wake::now);
      if (max_tasks && ++done >= max_tasks) break;
      // Past its resident limit, it leaves between tasks, as at maxtasksperchild: the parent
      // sends what it had queued here to the others, and replaces it.
      if (ctx.options->max_worker_rss && os::resident_bytes() > *ctx.options->max_worker_rss) break;
    }
    // Leaving with chunks of its batch still queued (past its resident limit): the parent reads
    // what it was not told of now, not only once the watcher sees the exit.
    if (owe_wake) ctx.pool->doorbell.ring();
    os::flush_stdio();
    os::exit_now(0);
  } catch (...) {
    // Only a vanished parent (RingAbandoned), a broken channel, or a std::bad_alloc outside any
    // task (the worker's own buffers, under a memory limit) lands here.
    os::exit_now(1);
  }
}

}  // namespace mproc::detail
