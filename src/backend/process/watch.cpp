#include "backend/process/watch.hpp"

#include <signal.h>

#include <algorithm>
#include <string>
#include <utility>

#include "heap/heap.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {
namespace {

constexpr std::int64_t kStallMinNs = 1'000'000;        // a worker without progress this long...
constexpr double kStallChunks = 4;                     // ...and this many average chunks is stalled
constexpr std::int64_t kRescueCheckNs = 20'000'000;    // the watcher looks for stalls this often
constexpr std::int64_t kStuckStartNs = 2'000'000'000;  // a new worker that reads nothing this long is stuck

// overran_ns: the time limit it ran past; 0 when it was not killed for that.
std::exception_ptr lost_error(const Record& lost, std::int64_t overran_ns, pid_t pid, const os::ExitStatus& status,
                              const std::exception_ptr& memory_error) {
  if (memory_error) return memory_error;
  if (overran_ns)
    return std::make_exception_ptr(TimeoutError(
        "mproc: the task ran longer than its time limit of " + std::to_string(overran_ns / 1'000'000) +
        " ms; its worker was killed and replaced" +
        (lost.attempts > 1 ? "; " + std::to_string(lost.attempts) + " attempts were made" : std::string())));
  return std::make_exception_ptr(
      WorkerLost(pid, status.signaled ? status.signal : 0, status.signaled ? 0 : status.code, lost.attempts));
}

}  // namespace

Watcher::Watcher(const Slots& slots, PoolState& state, ChunkBook& book, Dispatcher& dispatcher, Spawner& spawner,
                 Collector& collector, const PoolOptions& options)
    : slots_(slots),
      state_(state),
      book_(book),
      dispatcher_(dispatcher),
      spawner_(spawner),
      collector_(collector),
      options_(options) {
  auto [r, w] = os::pipe();
  os::set_nonblocking(r.get(), true);
  wake_read_ = std::move(r);
  wake_write_ = std::move(w);
}

void Watcher::wake() noexcept {
  char byte = 1;
  try {
    os::write_some(wake_write_.get(), &byte, 1);
  } catch (...) {
    // The pipe is full, so the watcher is due to wake anyway.
  }
}

void Watcher::stop() noexcept {
  stop_.store(true);
  wake();
}

void Watcher::spawn(Slot& slot) {
  const std::int64_t at = now_ns();
  spawner_.spawn(slot);
  if (insights_) insights_->started(slot.id, slot.pid, at);
  wake();
}

void Watcher::limit_tasks() {
  // The watcher sleeps without a deadline until some call needs its checks.
  if (!per_call_limits_) wake();
  per_call_limits_ = true;
}

void Watcher::run() {
  // Not a callback thread: completions it causes (a lost task) go to the result thread, so that
  // callbacks run one at a time and the watcher is never held up by one.
  t_on_pool_thread = false;
  while (!stop_.load()) {
    std::vector<os::PollFd> fds{{wake_read_.get()}};
    std::vector<Slot*> who{nullptr};
    {
      std::lock_guard lock(state_.mu);
      for (auto& s : slots_)
        if (s->alive) {
          fds.push_back({s->pidfd.get()});
          who.push_back(s.get());
        }
    }
    auto next = enforce_time_limits();
    if (auto rescue = check_stalls(); rescue && (!next || *rescue < *next)) next = rescue;
    os::poll_readable(fds, next);
    if (fds[0].ready) os::drain_nonblocking(wake_read_.get());
    for (std::size_t i = 1; i < fds.size(); ++i)
      if (fds[i].ready) on_exit(*who[i]);
  }
}

// --- stalls and the claim/revoke of unstarted chunks -------------------------------------------

void Watcher::rescue_stalled() {
  auto idle = [](const auto& s) {
    return s->alive && !s->stalled && !s->dead.load(std::memory_order_relaxed) && s->inflight.empty();
  };
  auto busy = [](const auto& s) { return s->alive && !s->stalled && !s->inflight.empty(); };
  if (!dispatcher_.queue_empty() || std::none_of(slots_.begin(), slots_.end(), idle) ||
      std::none_of(slots_.begin(), slots_.end(), busy))
    return;  // without a clock reading: after every result of a round trip at a time, none is busy
  const std::int64_t now = now_ns();
  stamp_progress(now);
  const auto stall_ns = std::max(kStallMinNs, static_cast<std::int64_t>(kStallChunks * book_.avg_chunk_ns()));
  for (auto& s : slots_)
    if (busy(s) && now - s->progress_ns > stall_ns) revoke(*s);
  dispatcher_.dispatch();
}

void Watcher::stamp_progress(std::int64_t now) {
  for (auto& s : slots_) {
    // Its oldest chunk in flight, or one after it, started: then (the worker's clock, read to
    // start it), looked at again each time: a batch's results are read only after its last
    // chunk, so the worker moves on with none read. Else it has not begun what it was given:
    // from the first look on.
    const bool started =
        !s->inflight.empty() && s->shared->started_seq.load(std::memory_order_acquire) >= s->inflight.front().seq;
    if (started)
      s->progress_ns = s->shared->started_ns.load(std::memory_order_relaxed);
    else if (s->progress_ns == kUnstamped)
      s->progress_ns = now;
  }
}

void Watcher::revoke(Slot& slot) {
  dispatcher_.revoke(slot);
  slot.stalled = true;
}

std::optional<os::Nanos> Watcher::check_stalls() {
  std::lock_guard lock(state_.mu);
  // A stalled worker that has read everything it was sent (the chunks taken back included) is
  // moving again, even if no result has shown it.
  bool moving_again = false;
  for (auto& s : slots_)
    if (s->stalled && s->inflight.empty() && s->tasks.free_space() == s->tasks.capacity()) {
      s->stalled = false;
      moving_again = true;
    }
  // Work that waited while it was stalled goes to it now: no result of its will call dispatch(),
  // and rescue_stalled() leaves pending work alone.
  if (moving_again) dispatcher_.dispatch();
  // Checked even when idle: enqueue() does not wake the watcher (a system call per apply()).
  if (book_.outstanding() == 0) return os::Nanos(kRescueCheckNs);
  // A worker that has not read the work sent to it for seconds, and never started a chunk, is
  // stuck at birth (forked while another thread held a lock it needs): replace it. On its own,
  // taking its work back is not enough when every worker is stuck so.
  const std::int64_t now = now_ns();
  stamp_progress(now);
  for (auto& s : slots_)
    if (s->alive && !options_.initializer && s->progress_ns != kUnstamped && now - s->progress_ns > kStuckStartNs &&
        s->shared->started_seq.load(std::memory_order_acquire) == 0 && s->tasks.free_space() != s->tasks.capacity())
      kill_worker(*s);
  // Without this, a stopped or stuck worker's queue would wait for a result that never comes.
  rescue_stalled();
  return os::Nanos(kRescueCheckNs);
}

// --- time limits ----------------------------------------------------------------------------

std::optional<os::Nanos> Watcher::enforce_time_limits() {
  std::lock_guard lock(state_.mu);
  if (!options_.task_timeout && !per_call_limits_) return std::nullopt;
  // A chunk that starts while we sleep is noticed at the next check: at most 10 ms late.
  std::int64_t next = 10'000'000;
  const std::int64_t now = now_ns();
  for (auto& s : slots_) {
    const Record* running = s->alive ? started_chunk(*s) : nullptr;
    const std::int64_t limit = running ? limit_ns(*running) : 0;
    if (!limit || s->timed_out_seq == running->seq) continue;
    std::int64_t left = s->shared->started_ns.load(std::memory_order_relaxed) + limit - now;
    if (left <= 0) {
      s->timed_out_seq = running->seq;
      kill_worker(*s);
    } else {
      next = std::min(next, left);
    }
  }
  return os::Nanos(next);
}

std::int64_t Watcher::limit_ns(const Record& record) const {
  if (auto limit = record.job->task_timeout()) return limit->count();
  return options_.task_timeout ? options_.task_timeout->count() : 0;
}

int Watcher::retries(const Record& record) const { return record.job->retries().value_or(options_.retries); }

// --- deaths and replacements ----------------------------------------------------------------

std::exception_ptr Watcher::out_of_memory(MemoryLimiter::Remains remains, std::uint64_t seq, pid_t pid,
                                          const os::ExitStatus& status, int attempts) {
  if (!options_.memory_limit) return nullptr;
  return spawner_.memory().verdict(std::move(remains), seq, pid, status, attempts);
}

std::vector<Record> Watcher::fail_if_no_workers() {
  if (!none_alive(slots_)) return {};
  std::string why = "mproc: the pool has no workers left";
  if (state_.init_failures >= 3) {
    why += ": the initializer failed " + std::to_string(state_.init_failures) + " times in a row";
    try {
      if (state_.init_error) std::rethrow_exception(state_.init_error);
    } catch (const std::exception& e) {
      why += std::string(" (") + e.what() + ")";
    } catch (...) {
    }
  }
  book_.set_broken(std::move(why));
  return dispatcher_.drop(false);
}

void Watcher::record_exit(unsigned lane, pid_t pid, const os::ExitStatus& status, bool timed_out) {
  const int signal = status.signaled ? status.signal : 0;
  const int code = status.signaled ? 0 : status.code;
  if (timed_out)
    insights_->event(lane, "time limit kill", now_ns(), pid, signal, code);
  else if (!state_.stopping_workers && (signal || code))
    insights_->event(lane, "worker died", now_ns(), pid, signal, code);
}

void Watcher::on_exit(Slot& slot) {
  slot.dead.store(true);
  collector_.wake();  // a collector waiting for the rest of this worker's message gives up
  // Its task's children end with it, whatever ended it; before the reaping, while its number
  // cannot be another's.
  os::kill_group(slot.pid, SIGKILL);
  slot.group->store(0, std::memory_order_release);  // the guard must not kill its number once reaped
  os::ExitStatus status = os::wait_pidfd(slot.pidfd.get(), true).value_or(os::ExitStatus{});
  const pid_t dead_pid = slot.pid;  // spawn() below gives the slot its replacement's pid
  std::optional<Record> lost;
  std::int64_t overran_ns = 0;  // the time limit the lost chunk was killed for running past
  MemoryLimiter::Remains remains;
  std::uint64_t lost_seq = 0;
  int attempts = 1;         // of the lost chunk, counting this one
  bool terminated = false;  // by its future's terminate(): the chunk is cancelled, not lost
  std::vector<Record> unrunnable;
  collector_.drain_dead(slot);  // results it finished before dying still count
  // A result frame it was writing into the heap, or sent but not as a whole: nobody else frees it.
  heap::deallocate(slot.shared->result_block.exchange(nullptr, std::memory_order_acq_rel));
  {
    std::lock_guard lock(state_.mu);
    slot.alive = false;
    slot.pidfd.reset();
    lost = dispatcher_.take_started(slot);
    overran_ns = lost && lost->seq == slot.timed_out_seq ? limit_ns(*lost) : 0;
    // Before spawn() below gives the slot a new worker (and a new cgroup); read out of the lock.
    if (options_.memory_limit) remains = spawner_.memory().remains_of(slot);
    lost_seq = lost ? lost->seq : 0;
    attempts = lost ? lost->attempts + 1 : 1;
    terminated = lost && lost->seq == slot.terminated_seq;
    if (insights_) record_exit(slot.id, dead_pid, status, overran_ns != 0);
    // Chunks it had not started go to the other workers, ahead of newer work.
    dispatcher_.take_back(slot, 0);
    // A lost chunk with retries left runs again (its items' places are in the record).
    if (lost && ++lost->attempts <= retries(*lost) && !book_.terminated() && !lost->job->cancel_requested()) {
      dispatcher_.add(std::move(*lost));
      lost.reset();
    }
    bool needed = book_.running() || book_.outstanding() > 0;
    if (!state_.stopping_workers && needed && state_.init_failures < 3) {
      try {
        spawn(slot);
      } catch (...) {
        // Cannot replace it now (fork failed): the remaining workers carry on.
      }
    }
    unrunnable = fail_if_no_workers();
    dispatcher_.dispatch();
    state_.changed.notify_all();
  }
  // Its group's files, out of the lock: removing the group kills what is left in it and may wait
  // up to 100 ms for that to die. Even for a chunk that runs again, whose error goes unused.
  const std::exception_ptr memory_error = out_of_memory(std::move(remains), lost_seq, dead_pid, status, attempts);
  if (lost && terminated) lost->job->mark_cancelled();
  if (lost)
    lost->job->fail(lost->first, lost->count,
                    terminated ? cancelled_error() : lost_error(*lost, overran_ns, dead_pid, status, memory_error));
  if (!unrunnable.empty()) {
    std::string why;
    {
      std::lock_guard lock(state_.mu);
      why = book_.broken();
    }
    auto error = std::make_exception_ptr(PoolNotRunning(why));
    for (auto& r : unrunnable) r.job->fail(r.first, r.count, error);
  }
  collector_.wake();  // for completions deferred while this thread held the role
}

}  // namespace mproc::detail
