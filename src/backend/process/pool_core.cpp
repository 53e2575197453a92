#include "backend/process/pool_core.hpp"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <iterator>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>

#include "mproc/detail/process_backend.hpp"
#include "mproc/errors.hpp"
#include "mproc/shared_heap.hpp"

namespace mproc::detail {
namespace {

constexpr auto kStopGrace = std::chrono::seconds(2);  // join() kills a worker that ignores its stop
// Long chunks go one at a time, short ones about 1 ms of work ahead.
constexpr ChunkBook::Pace kPace{.queue_ahead_ns = 1'000'000, .first_window = 1, .min_window = 1, .max_window = 256};

Slots make_slots(unsigned n) {
  Slots slots;
  for (unsigned i = 0; i < n; ++i) {
    slots.push_back(std::make_unique<Slot>());
    slots.back()->id = i;
  }
  return slots;
}

}  // namespace

void kill_worker(const Slot& slot) {
  // The group first: its leader, not yet reaped, keeps its number from being reused.
  os::kill_group(slot.pid, SIGKILL);
  os::pidfd_send_signal(slot.pidfd.get(), SIGKILL);
}

void kill_all(const Slots& slots) {
  for (auto& s : slots)
    if (s->alive) kill_worker(*s);
}

// --- starting -------------------------------------------------------------------------------

ProcessPoolCore::ProcessPoolCore(PoolOptions options)
    : options_(std::move(options)),
      slots_(make_slots(checked_pool_size(options_))),
      insights_(options_.insights ? std::make_unique<InsightsRecorder>("process", size()) : nullptr),
      memory_(slots_),
      spawner_(memory_.shared(), slots_, options_),
      dispatcher_(memory_.shared(), slots_, book_, options_),
      collector_(memory_.shared(), slots_, *this),
      watcher_(slots_, state_, book_, dispatcher_, spawner_, collector_, options_),
      book_(*this, kPace, "Pool") {
  book_.spill_tasks_to_heap();  // the workers map the heap: ProcessBackend mapped it before this
  // SIGINT goes to the program's threads, never to the pool's (they would not report it).
  collector_.set_timed(insights_ != nullptr);
  watcher_.set_insights(insights_.get());
  watch_interrupts();
  os::BlockSignals block({SIGINT, SIGTERM});
  start_workers();
  result_thread_ = std::thread([this] {
    collector_.run();
    if (orphan_) finish_orphaned();
  });
  result_thread_id_ = result_thread_.get_id();
}

void ProcessPoolCore::start_workers() {
  // The watcher forks every worker, the first ones included: PR_SET_PDEATHSIG ties a worker to
  // the thread that forked it, and the watcher lives exactly as long as the pool.
  std::promise<void> spawned;
  auto all_spawned = spawned.get_future();
  // The hellos are results: read them as the collector would, holding the role from before the
  // watcher starts. Otherwise the watcher could collect the hellos of workers whose initializer
  // failed and replace them, three times over, before this thread looks for them.
  std::unique_lock role(collector_.role(), std::defer_lock);
  if (options_.initializer) role.lock();
  watch_thread_ = std::thread([this, &spawned] {
    try {
      std::lock_guard lock(state_.mu);
      for (auto& slot : slots_) watcher_.spawn(*slot);
    } catch (...) {
      spawned.set_exception(std::current_exception());
      return;
    }
    spawned.set_value();
    watcher_.run();
  });
  bool watching = false;
  try {
    all_spawned.get();
    watching = true;
    if (options_.initializer) {
      for (auto& slot : slots_) {
        collector_.receive_hello(*slot);
        std::lock_guard lock(state_.mu);
        if (state_.init_failures) std::rethrow_exception(state_.init_error);
      }
      role.unlock();
    }
  } catch (...) {
    // No worker outlives a constructor that fails.
    {
      std::lock_guard lock(state_.mu);
      state_.stopping_workers = true;
      book_.terminate();
      kill_all(slots_);
    }
    if (role.owns_lock()) role.unlock();
    abandon_start(watching);
    throw;
  }
}

void ProcessPoolCore::abandon_start(bool watching) {
  if (watching) {
    await_all_gone();
    watcher_.stop();
  }
  watch_thread_.join();
  for (auto& slot : slots_)
    if (slot->alive) {
      slot->group->store(0, std::memory_order_release);  // the guard must not kill its number once reaped
      if (os::wait_pidfd(slot->pidfd.get(), true)) slot->alive = false;
    }
}

ProcessPoolCore::~ProcessPoolCore() {
  if (result_thread_.joinable()) terminate();
}

// --- taking work in, and its results ----------------------------------------------------------

void ProcessPoolCore::check_running() {
  std::lock_guard lock(state_.mu);
  book_.check_running();
}

void ProcessPoolCore::enqueue(Record record, const char* kind) {
  std::lock_guard lock(state_.mu);
  book_.check_running();
  if (record.job->task_timeout()) watcher_.limit_tasks();
  if (insights_) insights_->number_call(*record.job, kind);
  dispatcher_.add(std::move(record));
}

void ProcessPoolCore::on_hello(const std::exception_ptr& error) {
  std::lock_guard lock(state_.mu);
  state_.init_failures = error ? state_.init_failures + 1 : 0;
  if (error) state_.init_error = error;
}

std::optional<Record> ProcessPoolCore::on_result(Slot& slot, const ResultHeader& header) {
  std::lock_guard lock(state_.mu);
  count_read_chunks();
  std::optional<Record> record = dispatcher_.complete(slot, header);
  if (record && slot.inflight.empty() && dispatcher_.queue_empty()) watcher_.rescue_stalled();
  return record;
}

void ProcessPoolCore::on_results_read(Record record) {
  book_.recycle(std::move(record.task));
  ++read_chunks_;
}

void ProcessPoolCore::settle() {
  if (read_chunks_ == 0) return;
  std::lock_guard lock(state_.mu);
  count_read_chunks();
}

void ProcessPoolCore::count_read_chunks() {
  if (read_chunks_ != 0 && book_.ended(std::exchange(read_chunks_, 0))) state_.changed.notify_all();
}

bool ProcessPoolCore::cancel(JobBase& job) {
  std::vector<Record> dropped;
  {
    std::lock_guard lock(state_.mu);
    if (job.ready()) return false;
    if (job.cancel_requested()) return job.cancelled();  // an earlier cancel decided
    dropped = dispatcher_.cancel(job);
    // Every chunk started: the cancel did nothing, and leaves no mark, which would refuse a chunk
    // lost with its worker the retry it is owed. Marked under the lock the watcher reads it in.
    if (dropped.empty()) return false;
    job.request_cancel();
    job.mark_cancelled();
    if (book_.outstanding() == 0) state_.changed.notify_all();
  }
  book_.fail_cancelled(dropped);
  return true;
}

bool ProcessPoolCore::terminate(JobBase& job) {
  std::vector<Record> dropped;
  bool killed = false;
  {
    std::lock_guard lock(state_.mu);
    if (job.ready()) return false;
    job.request_cancel();  // and a lost chunk of it is not run again
    dropped = dispatcher_.cancel(job);
    // What cancel() left in a worker's flight its worker claimed: it runs (or just ended) there.
    for (auto& s : slots_) {
      auto it =
          std::find_if(s->inflight.begin(), s->inflight.end(), [&](const Record& r) { return r.job.get() == &job; });
      if (!s->alive || it == s->inflight.end() || s->terminated_seq == it->seq) continue;
      s->terminated_seq = it->seq;
      kill_worker(*s);
      killed = true;
    }
    if (!dropped.empty()) job.mark_cancelled();
    if (book_.outstanding() == 0) state_.changed.notify_all();
  }
  book_.fail_cancelled(dropped);
  return killed || !dropped.empty();
}

void ProcessPoolCore::cancel_queued() {
  std::vector<Record> dropped;
  {
    std::lock_guard lock(state_.mu);
    for (auto& s : slots_)
      if (s->alive) dispatcher_.revoke(*s);
    dropped = dispatcher_.drop(false);
    for (auto& r : dropped) {
      r.job->request_cancel();  // a lost chunk of it is not run again
      r.job->mark_cancelled();
    }
    if (book_.outstanding() == 0) state_.changed.notify_all();
  }
  book_.fail_cancelled(dropped);
}

bool ProcessPoolCore::running(JobBase& job) {
  if (job.chunks_started() > 0) return true;
  std::lock_guard lock(state_.mu);
  return dispatcher_.running(job);
}

void ProcessPoolCore::on_chunk_timing(Slot& slot, const Record& record, const ChunkTiming& timing) {
  insights_->chunk(slot.id, *record.job, record.first, record.count, timing);
}

bool ProcessPoolCore::spin_worthwhile(Nanos budget) {
  return dispatcher_.spin_worthwhile(budget);  // estimates, read without the lock
}

std::vector<int> ProcessPoolCore::worker_pids() {
  std::lock_guard lock(state_.mu);
  std::vector<int> pids;
  for (auto& s : slots_) pids.push_back(s->alive ? s->pid : 0);
  return pids;
}

// --- shutting down ----------------------------------------------------------------------------

void ProcessPoolCore::close() {
  std::lock_guard lock(state_.mu);
  book_.close();
}

void ProcessPoolCore::join() {
  if (std::this_thread::get_id() == result_thread_id_)
    throw std::logic_error(
        "mproc: Pool::join: called from a callback of the same pool, whose thread delivers the results it would "
        "wait for; join elsewhere, or call terminate()");
  {
    std::unique_lock lock(state_.mu);
    book_.check_joinable();
    const std::uint64_t interrupts = interrupts_at_start();
    while (!state_.changed.wait_for(lock, kInterruptCheck, [this] { return book_.settled(); }))
      throw_if_interrupted(interrupts);
    state_.stopping_workers = true;
    const TaskHeader stop{.seq = kControlSeq};
    const auto stop_bytes = std::as_bytes(std::span(&stop, 1));
    // A stalled worker may never read its stop (stuck, say, on a lock held at its fork).
    for (auto& s : slots_)
      if (s->alive && (s->stalled || !s->tasks.try_send(stop_bytes, {}))) kill_worker(*s);
    auto all_gone = [this] { return none_alive(slots_); };
    if (!state_.changed.wait_for(lock, kStopGrace, all_gone)) {
      kill_all(slots_);
      state_.changed.wait(lock, all_gone);
    }
  }
  stop_threads();
}

void ProcessPoolCore::terminate() {
  std::vector<Record> dropped;
  {
    std::lock_guard lock(state_.mu);
    book_.terminate();
    state_.stopping_workers = true;
    dropped = dispatcher_.drop(true);
    kill_all(slots_);
    state_.changed.notify_all();
  }
  auto error = terminated_error();
  for (auto& r : dropped) r.job->fail(r.first, r.count, error);
  // From a callback, this thread holds the collecting role, which the watcher needs to reap the
  // workers: they are killed, and reaped once the callback returns; join() or the destructor
  // waits for them and stops the pool's threads.
  if (std::this_thread::get_id() == result_thread_id_) {
    std::lock_guard lock(state_.mu);
    std::move(dropped.begin(), dropped.end(), std::back_inserter(dropped_while_dying_));
    return;
  }
  await_all_gone();
  stop_threads();
}

void ProcessPoolCore::await_all_gone() {
  std::vector<Record> dropped;  // released once the lock is
  std::unique_lock lock(state_.mu);
  state_.changed.wait(lock, [this] { return none_alive(slots_); });
  dropped.swap(dropped_while_dying_);
}

void ProcessPoolCore::stop_threads() {
  watcher_.stop();
  collector_.stop();
  std::lock_guard lock(join_mu_);
  for (std::thread* t : {&watch_thread_, &result_thread_})
    if (t->joinable()) t->join();
}

void ProcessPoolCore::outlive_callback(std::unique_ptr<ProcessPoolCore> self) noexcept {
  terminate();  // kills the workers; returns at once on this thread
  orphan_ = std::move(self);
  collector_.stop();
}

void ProcessPoolCore::finish_orphaned() noexcept {
  std::unique_ptr<ProcessPoolCore> self = std::move(orphan_);
  await_all_gone();
  watcher_.stop();
  watch_thread_.join();
  result_thread_.detach();  // this thread: nobody is left to join it
}  // self: the core is deleted here, its last use

// --- ProcessBackend ---------------------------------------------------------------------------

ProcessBackend::ProcessBackend(PoolOptions options)
    : regions_before_((ensure_heap(), shared_regions_made())),  // the heap first: workers inherit it
      core_(std::make_unique<ProcessPoolCore>(std::move(options))),
      book_(&core_->book()) {}
ProcessBackend::~ProcessBackend() {
  if (core_->on_result_thread()) {
    ProcessPoolCore* core = core_.get();
    core->outlive_callback(std::move(core_));
  }
}
unsigned ProcessBackend::size() const noexcept { return core_->size(); }
JobHost* ProcessBackend::host() noexcept { return core_.get(); }
void ProcessBackend::check_running() const { core_->check_running(); }
void ProcessBackend::close() { core_->close(); }
void ProcessBackend::join() { core_->join(); }
void ProcessBackend::terminate() { core_->terminate(); }
void ProcessBackend::cancel_queued() { core_->cancel_queued(); }
std::vector<int> ProcessBackend::worker_pids() const { return core_->worker_pids(); }
const InsightsRecorder* ProcessBackend::insights() const noexcept { return core_->insights(); }

void ProcessBackend::shutdown() noexcept { close_and_join(*core_); }

}  // namespace mproc::detail
