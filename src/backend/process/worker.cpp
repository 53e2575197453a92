// The worker process's side of a process pool: after the fork, read chunks, run them, send
// results, until told to stop, the parent disappears, or maxtasksperchild is reached.
#include <signal.h>

#include "backend/process/slot.hpp"
#include "mproc/detail/wire.hpp"
#include "os/os.hpp"
#include "worker_identity.hpp"

namespace mproc::detail {
namespace {

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

}  // namespace

void (*worker_start_hook)() noexcept = nullptr;

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
    Writer inbox, out;
    for (long done = 0;;) {
      slot.tasks.receive(inbox, waits::kProcessWorker, parent_gone);
      const std::uint64_t seq = read_task_header(inbox.bytes()).seq;
      if (seq == kControlSeq) break;
      if (!claim_chunk(slot.shared->claim, seq)) continue;  // taken back for another worker
      Reader in(task_chunk(inbox.bytes()));
      std::int64_t start = now_ns();
      slot.shared->started_ns.store(start, std::memory_order_relaxed);
      slot.shared->started_seq.store(seq, std::memory_order_release);

      begin_result_frame(out);
      run_chunk(in, out);
      end_result_frame(out, ResultHeader{.seq = seq, .took_ns = now_ns() - start});
      slot.results.send(out.bytes(), {}, parent_gone);
      if (max_tasks && ++done >= max_tasks) break;
      // Past its resident limit, it leaves between tasks, as at maxtasksperchild: the parent
      // sends what it had queued here to the others, and replaces it.
      if (ctx.options->max_worker_rss && os::resident_bytes() > *ctx.options->max_worker_rss) break;
    }
    os::flush_stdio();
    os::exit_now(0);
  } catch (...) {
    // Only a vanished parent (RingAbandoned) or a broken channel lands here.
    os::exit_now(1);
  }
}

}  // namespace mproc::detail
