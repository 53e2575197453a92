#include "backend/process/pool_core.hpp"

#include <emmintrin.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>
#include <future>
#include <stdexcept>
#include <string>

#include "mproc/codec.hpp"
#include "mproc/detail/process_backend.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {
namespace {

constexpr std::size_t kRingBytes = std::size_t{1} << 20;  // each direction, each worker
constexpr std::int64_t kWaitSpinNs = 100'000;             // a waiting caller collects this long, then sleeps
constexpr std::int64_t kResultSpinNs = 20'000;            // the result thread spins this long when idle
constexpr double kQueueAheadNs = 1'000'000;               // work queued on a worker ahead of what it runs
constexpr std::int64_t kStallMinNs = 1'000'000;           // a worker without progress this long...
constexpr double kStallChunks = 4;                        // ...and this many average chunks is stalled
constexpr std::int64_t kRescueCheckNs = 20'000'000;       // the watcher looks for stalls this often
constexpr std::int64_t kStuckStartNs = 2'000'000'000;     // a new worker that reads nothing this long is stuck
constexpr auto kStopGrace = std::chrono::seconds(2);      // join() kills a worker that ignores its stop
constexpr std::size_t kSpareBuffers = 16;                 // chunk buffers kept for reuse...
constexpr std::size_t kSpareBufferMax = 64 << 20;         // ...each up to this size

// True on the thread that holds the collecting role, while it holds it.
thread_local bool t_collecting = false;
// True on a pool's result thread: the collector of last resort, which must never sleep waiting
// for someone else to collect.
thread_local bool t_result_thread = false;

std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

std::span<const std::byte> bytes_of(const std::uint64_t& v) {
  return {reinterpret_cast<const std::byte*>(&v), sizeof v};
}

}  // namespace

ProcessPoolCore::ProcessPoolCore(PoolOptions options) : options_(std::move(options)), parent_pid_(os::getpid()) {
  unsigned n = checked_pool_size(options_);
  for (unsigned i = 0; i < n; ++i) slots_.push_back(std::make_unique<Slot>());
  map_memory();
  auto [r, w] = os::pipe();
  os::set_nonblocking(r.get(), true);
  wake_read_ = std::move(r);
  wake_write_ = std::move(w);
  auto [dr, dw] = os::pipe();
  watchdog_read_ = std::move(dr);
  watchdog_write_ = std::move(dw);
  os::register_parent_only_fd(watchdog_write_.get());
  // SIGINT goes to the program's threads, never to the pool's (they would not report it).
  watch_interrupts();
  os::BlockSignals block({SIGINT, SIGTERM});
  // The watcher forks every worker, the first ones included: PR_SET_PDEATHSIG ties a worker to
  // the thread that forked it, and the watcher lives exactly as long as the pool.
  std::promise<void> spawned;
  auto all_spawned = spawned.get_future();
  // The hellos are results: read them as the collector would, holding the role from before the
  // watcher starts. Otherwise the watcher could collect the hellos of workers whose initializer
  // failed and replace them, three times over, before this thread looks for them.
  std::unique_lock role(role_mu_, std::defer_lock);
  if (options_.initializer) role.lock();
  watch_thread_ = std::thread([this, &spawned] {
    try {
      std::lock_guard lock(mu_);
      for (auto& slot : slots_) spawn(*slot);
    } catch (...) {
      spawned.set_exception(std::current_exception());
      return;
    }
    spawned.set_value();
    watch_loop();
  });
  bool watching = false;
  try {
    all_spawned.get();
    watching = true;
    if (options_.initializer) {
      for (auto& slot : slots_) await_hello(*slot);
      role.unlock();
    }
  } catch (...) {
    // No worker outlives a constructor that fails.
    {
      std::lock_guard lock(mu_);
      stopping_workers_ = true;
      state_ = State::terminated;
      kill_all();
    }
    if (role.owns_lock()) role.unlock();
    abandon_start(watching);
    throw;
  }
  result_thread_ = std::thread([this] {
    result_loop();
    if (orphan_) finish_orphaned();
  });
  result_thread_id_ = result_thread_.get_id();
}

void ProcessPoolCore::abandon_start(bool watching) {
  if (watching) {
    std::unique_lock lock(mu_);
    changed_.wait(
        lock, [this] { return std::none_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->alive; }); });
    lock.unlock();
    stop_threads_.store(true);
    wake_watcher();
  }
  watch_thread_.join();
  for (auto& slot : slots_)
    if (slot->alive && os::wait_pidfd(slot->pidfd.get(), true)) slot->alive = false;
  os::unregister_parent_only_fd(watchdog_write_.get());
  os::unmap(memory_, memory_size_);
  memory_ = nullptr;
}

ProcessPoolCore::~ProcessPoolCore() {
  if (result_thread_.joinable()) terminate();
  os::unregister_parent_only_fd(watchdog_write_.get());
  os::unmap(memory_, memory_size_);
}

void ProcessPoolCore::map_memory() {
  // One shared anonymous mapping, made before any fork: no name, nothing left in /dev/shm.
  std::size_t header = align_up(sizeof(PoolShared), 64) + align_up(sizeof(SlotShared), 64) * slots_.size();
  header = align_up(header, 4096);
  memory_size_ = header + 2 * kRingBytes * slots_.size();
  memory_ = os::map_shared_anonymous(memory_size_);
  auto* base = static_cast<std::byte*>(memory_);
  shared_ = new (base) PoolShared();
  std::byte* p = base + align_up(sizeof(PoolShared), 64);
  std::byte* data = base + header;
  for (auto& slot : slots_) {
    slot->shared = new (p) SlotShared();
    p += align_up(sizeof(SlotShared), 64);
    slot->tasks = Ring(&slot->shared->task_header, data, kRingBytes, &slot->shared->task_bell);
    data += kRingBytes;
    slot->results = Ring(&slot->shared->result_header, data, kRingBytes, &shared_->doorbell);
    data += kRingBytes;
  }
}

void ProcessPoolCore::spawn(Slot& slot) {
  slot.tasks.reset();
  slot.results.reset();
  slot.shared->task_bell.disarm();
  slot.shared->started_seq.store(0, std::memory_order_relaxed);
  slot.shared->claim.store(0, std::memory_order_relaxed);
  slot.dead.store(false);
  slot.chunks_sent = 0;
  slot.stalled = false;
  slot.progress_ns = 0;
  WorkerContext ctx{&slot, shared_, &options_, parent_pid_, watchdog_read_.get()};
  os::flush_stdio();
  pid_t pid = os::fork();
  if (pid == 0) {
    os::close_parent_only_fds();
    run_worker(ctx);
  }
  slot.pid = pid;
  try {
    slot.pidfd = os::pidfd_open(pid);
  } catch (...) {
    os::kill(pid, SIGKILL);
    os::reap(pid);
    throw;
  }
  slot.alive = true;
  wake_watcher();
}

void ProcessPoolCore::await_hello(Slot& slot) {
  // Until its hello, a worker that dies can only have died starting up.
  try {
    slot.results.receive(slot.inbox, waits::kProcessMessage, [&slot] { return slot.dead.load(); });
  } catch (const RingAbandoned&) {
    throw std::runtime_error("mproc: worker " + std::to_string(slot.pid) + " exited while starting");
  }
  Reader r(slot.inbox.bytes());
  std::uint64_t seq = 0;
  std::uint8_t status = 0;
  r.read(&seq, sizeof seq);
  r.read(&status, 1);
  if (status != 0) std::rethrow_exception(decode_exception(r));
}

void ProcessPoolCore::throw_unless_running() const {
  if (!broken_.empty()) throw PoolNotRunning(broken_);
  if (state_ != State::running)
    throw PoolNotRunning(state_ == State::closed ? "mproc: the pool is closed" : "mproc: the pool was terminated");
}

void ProcessPoolCore::check_running() {
  std::lock_guard lock(mu_);
  throw_unless_running();
}

void ProcessPoolCore::enqueue(Record record) {
  std::lock_guard lock(mu_);
  throw_unless_running();
  if (auto limit = record.job->task_timeout()) {
    record.limit_ns = limit->count();
    // The watcher sleeps without a deadline until some call needs its checks.
    if (!per_call_limits_) wake_watcher();
    per_call_limits_ = true;
  } else if (options_.task_timeout) {
    record.limit_ns = options_.task_timeout->count();
  }
  pending_.push_back(std::move(record));
  ++outstanding_;
  dispatch();
}

std::size_t ProcessPoolCore::window() const {
  // Long chunks go one at a time, as Python's workers pull them, so none waits behind a slow
  // one while another worker idles; short ones are queued ahead, to hide the round trip.
  if (avg_chunk_ns_ <= 0) return 1;
  return std::clamp<std::size_t>(static_cast<std::size_t>(kQueueAheadNs / avg_chunk_ns_), 1, 256);
}

bool ProcessPoolCore::spin_worthwhile(std::int64_t budget_ns) const {
  std::lock_guard lock(mu_);
  if (avg_chunk_ns_ < kResultSpinNs) return true;
  double rounds = std::ceil(static_cast<double>(outstanding_) / static_cast<double>(slots_.size()));
  return avg_chunk_ns_ * rounds < static_cast<double>(budget_ns);
}

void ProcessPoolCore::dispatch() {
  const std::size_t limit = window();
  while (!pending_.empty()) {
    Slot* best = nullptr;
    for (auto& s : slots_) {
      if (!s->alive || s->stalled || s->dead.load(std::memory_order_relaxed) || s->inflight.size() >= limit) continue;
      if (options_.maxtasksperchild && s->chunks_sent >= *options_.maxtasksperchild) continue;
      // Fewest in flight; among equals, one that is awake (spinning) over one asleep.
      if (!best || s->inflight.size() < best->inflight.size() ||
          (s->inflight.size() == best->inflight.size() &&
           best->shared->task_bell.word.load(std::memory_order_relaxed) &&
           !s->shared->task_bell.word.load(std::memory_order_relaxed)))
        best = s.get();
    }
    if (!best || !send(*best, pending_.front())) return;
    best->inflight.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
}

bool ProcessPoolCore::send(Slot& slot, Record& record) {
  record.seq = next_seq_++;
  if (slot.inflight.empty()) slot.progress_ns = now_ns();
  if (!slot.tasks.try_send(bytes_of(record.seq), record.payload.bytes())) {
    // Too large for the free space: stream it, but only to an idle worker, which reads while
    // we write; a busy one would make us wait for its current task.
    if (!slot.inflight.empty()) return false;
    try {
      slot.tasks.send(bytes_of(record.seq), record.payload.bytes(), [&slot] { return slot.dead.load(); });
    } catch (const RingAbandoned&) {
      return false;  // the worker died; the watcher resets its slot and the record stays pending
    }
  }
  ++slot.chunks_sent;
  return true;
}

void ProcessPoolCore::rescue_stalled(std::int64_t now) {
  auto idle = [](const auto& s) {
    return s->alive && !s->stalled && !s->dead.load(std::memory_order_relaxed) && s->inflight.empty();
  };
  if (!pending_.empty() || std::none_of(slots_.begin(), slots_.end(), idle)) return;
  const auto stall_ns = std::max(kStallMinNs, static_cast<std::int64_t>(kStallChunks * avg_chunk_ns_));
  for (auto& s : slots_)
    if (s->alive && !s->stalled && !s->inflight.empty() && now - s->progress_ns > stall_ns) revoke(*s);
  dispatch();
}

void ProcessPoolCore::revoke(Slot& slot) {
  const std::uint64_t bound = kRevoked | slot.inflight.back().seq;
  std::uint64_t old = slot.shared->claim.load(std::memory_order_acquire);
  while (old != bound && !slot.shared->claim.compare_exchange_weak(old, bound, std::memory_order_acq_rel)) {
  }
  // What it replaced is the last chunk the worker claimed (or the bound of an earlier revocation,
  // past which it claimed nothing): everything after it will never run there.
  const std::uint64_t claimed = old & ~kRevoked;
  auto first =
      std::find_if(slot.inflight.begin(), slot.inflight.end(), [&](const Record& r) { return r.seq > claimed; });
  const auto taken = std::distance(first, slot.inflight.end());
  pending_.insert(pending_.begin(), std::make_move_iterator(first), std::make_move_iterator(slot.inflight.end()));
  slot.inflight.erase(first, slot.inflight.end());
  slot.chunks_sent -= static_cast<long>(taken);
  slot.stalled = true;
}

// --- collecting results ---------------------------------------------------------------------

bool ProcessPoolCore::any_results() const noexcept {
  for (const auto& s : slots_)
    if (!s->dead.load(std::memory_order_relaxed) && s->results.has_message()) return true;
  return false;
}

bool ProcessPoolCore::drain() {
  bool any = false;
  for (auto& s : slots_)
    if (!s->dead.load(std::memory_order_relaxed)) any |= drain_slot(*s);
  return any;
}

bool ProcessPoolCore::drain_slot(Slot& slot) {
  bool any = false;
  while (slot.results.has_message()) {
    try {
      slot.results.receive(slot.inbox, waits::kProcessMessage, [&slot] { return slot.dead.load(); });
    } catch (const RingAbandoned&) {
      break;  // the worker died mid-message; the watcher takes it from here
    }
    handle_message(slot);
    any = true;
  }
  return any;
}

void ProcessPoolCore::handle_message(Slot& slot) {
  Reader r(slot.inbox.bytes());
  std::uint64_t seq = 0;
  r.read(&seq, sizeof seq);
  if (seq == kControlSeq) {  // a replacement worker's hello
    std::uint8_t status = 0;
    r.read(&status, 1);
    std::exception_ptr error = status == 0 ? nullptr : decode_exception(r);
    std::lock_guard lock(mu_);
    init_failures_ = status == 0 ? 0 : init_failures_ + 1;
    if (error) init_error_ = error;
    return;
  }
  std::int64_t took = 0;
  r.read(&took, sizeof took);
  Record record;
  {
    std::lock_guard lock(mu_);
    if (slot.inflight.empty() || slot.inflight.front().seq != seq) return;  // dropped by terminate()
    record = std::move(slot.inflight.front());
    slot.inflight.pop_front();
    slot.progress_ns = now_ns();
    slot.stalled = false;
    avg_chunk_ns_ =
        avg_chunk_ns_ <= 0 ? static_cast<double>(took) : 0.9 * avg_chunk_ns_ + 0.1 * static_cast<double>(took);
    dispatch();
    if (slot.inflight.empty() && pending_.empty()) rescue_stalled(slot.progress_ns);
  }
  record.job->deliver(record.first, record.count, r);
  recycle(std::move(record.payload));
  std::lock_guard lock(mu_);
  if (--outstanding_ == 0) changed_.notify_all();
}

Writer ProcessPoolCore::take_buffer() {
  std::lock_guard lock(buffers_mu_);
  if (buffers_.empty()) return Writer{};
  Writer w = std::move(buffers_.back());
  buffers_.pop_back();
  return w;
}

void ProcessPoolCore::recycle(Writer buffer) noexcept {
  if (buffer.capacity() > kSpareBufferMax) return;
  buffer.clear();
  std::lock_guard lock(buffers_mu_);
  if (buffers_.size() < kSpareBuffers) buffers_.push_back(std::move(buffer));
}

void ProcessPoolCore::release_role() noexcept {
  // The result thread may be asleep: from now on a worker with a result must wake it.
  shared_->doorbell.arm();
  t_collecting = false;
  role_mu_.unlock();
  if (any_results() || has_deferred_.load()) wake_result_thread();
}

bool ProcessPoolCore::wait(JobBase& job, const Deadline& deadline) {
  if (t_collecting)
    throw std::logic_error(
        "mproc: a callback cannot wait for a result of its own pool: it runs on the thread that collects them");
  if (t_result_thread) return collect_until(job, deadline);  // a callback waiting on its pool
  // Whoever waits collects: with the result thread asleep, a synchronous call involves just
  // this thread and one worker, with no wake-up in between.
  if (spin_worthwhile(kWaitSpinNs) && role_mu_.try_lock()) {
    t_collecting = true;
    shared_->doorbell.disarm();
    const std::int64_t spin_end = now_ns() + kWaitSpinNs;
    for (unsigned idle = 0; !job.satisfied();) {
      if (drain()) continue;
      if ((++idle & 63) == 0 && (now_ns() > spin_end || (deadline && Clock::now() >= *deadline))) break;
      _mm_pause();
    }
    release_role();
    if (job.satisfied()) return true;
  }
  return job.wait_plain(deadline);
}

bool ProcessPoolCore::collect_until(JobBase& job, const Deadline& deadline) {
  std::unique_lock role(role_mu_);  // others hold it only briefly: they hand it back
  t_collecting = true;
  while (!job.satisfied()) {
    if (drain()) continue;
    std::int64_t slice = 10'000'000;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - Clock::now()).count();
      if (left <= 0) break;
      slice = std::min<std::int64_t>(slice, left);
    }
    shared_->doorbell.arm();
    if (any_results()) {
      shared_->doorbell.disarm();
      continue;
    }
    t_collecting = false;
    role.unlock();
    shared_->doorbell.sleep(Nanos(slice));
    role.lock();
    t_collecting = true;
  }
  t_collecting = false;
  return job.satisfied();
}

void ProcessPoolCore::defer_completion(std::shared_ptr<JobBase> job) {
  {
    std::lock_guard lock(deferred_mu_);
    deferred_.push_back(std::move(job));
    has_deferred_.store(true);
  }
  if (!t_collecting) wake_result_thread();  // a collector hands over on release_role()
}

void ProcessPoolCore::run_deferred() {
  std::deque<std::shared_ptr<JobBase>> jobs;
  {
    std::lock_guard lock(deferred_mu_);
    jobs.swap(deferred_);
    has_deferred_.store(false);
  }
  for (auto& job : jobs) job->complete();
}

void ProcessPoolCore::wake_result_thread() noexcept {
  shared_->doorbell.word.store(0, std::memory_order_seq_cst);
  os::futex_wake(shared_->doorbell.word, INT_MAX, true);
}

void ProcessPoolCore::result_loop() {
  t_on_pool_thread = true;
  t_result_thread = true;
  std::unique_lock role(role_mu_);
  t_collecting = true;
  std::int64_t idle_since = now_ns();
  bool spin = true;  // whether the next result is expected soon
  for (;;) {
    if (has_deferred_.load()) {
      // Callbacks run without the role, so that one may wait on the pool like any caller.
      t_collecting = false;
      role.unlock();
      run_deferred();
      role.lock();
      t_collecting = true;
    }
    if (drain()) {
      idle_since = now_ns();
      spin = spin_worthwhile(kResultSpinNs);
      continue;
    }
    if ((stop_threads_.load() || orphan_) && !has_deferred_.load()) break;
    if (spin && now_ns() - idle_since < kResultSpinNs) {
      _mm_pause();
      continue;
    }
    shared_->doorbell.arm();
    if (any_results() || has_deferred_.load() || stop_threads_.load()) {
      shared_->doorbell.disarm();
      continue;
    }
    t_collecting = false;
    role.unlock();
    shared_->doorbell.sleep(waits::kProcessResultThread.sleep);  // bounded: a safety net, not the wake-up path
    role.lock();
    t_collecting = true;
    idle_since = now_ns();
  }
  t_collecting = false;
}

void ProcessPoolCore::outlive_callback(std::unique_ptr<ProcessPoolCore> self) noexcept {
  terminate();  // kills the workers; returns at once on this thread
  orphan_ = std::move(self);
}

void ProcessPoolCore::finish_orphaned() noexcept {
  std::unique_ptr<ProcessPoolCore> self = std::move(orphan_);
  {
    std::unique_lock lock(mu_);
    changed_.wait(
        lock, [this] { return std::none_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->alive; }); });
  }
  stop_threads_.store(true);
  wake_watcher();
  watch_thread_.join();
  result_thread_.detach();  // this thread: nobody is left to join it
}  // self: the core is deleted here, its last use

// --- watching workers -------------------------------------------------------------------------

void ProcessPoolCore::wake_watcher() noexcept {
  char byte = 1;
  try {
    os::write_some(wake_write_.get(), &byte, 1);
  } catch (...) {
    // The pipe is full, so the watcher is due to wake anyway.
  }
}

void ProcessPoolCore::watch_loop() {
  // Not a callback thread: completions it causes (a lost task) go to the result thread, so that
  // callbacks run one at a time and the watcher is never held up by one.
  t_on_pool_thread = false;
  while (!stop_threads_.load()) {
    std::vector<os::PollFd> fds{{wake_read_.get()}};
    std::vector<Slot*> who{nullptr};
    {
      std::lock_guard lock(mu_);
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

std::optional<os::Nanos> ProcessPoolCore::check_stalls() {
  std::lock_guard lock(mu_);
  // A stalled worker that has read everything it was sent (the chunks taken back included) is
  // moving again, even if no result has shown it.
  for (auto& s : slots_)
    if (s->stalled && s->inflight.empty() && s->tasks.free_space() == s->tasks.capacity()) s->stalled = false;
  // Checked even when idle: enqueue() does not wake the watcher (a system call per apply()).
  if (outstanding_ == 0) return os::Nanos(kRescueCheckNs);
  // A worker that has not read the work sent to it for seconds, and never started a chunk, is
  // stuck at birth (forked while another thread held a lock it needs): replace it. On its own,
  // taking its work back is not enough when every worker is stuck so.
  const std::int64_t now = now_ns();
  for (auto& s : slots_)
    if (s->alive && !options_.initializer && s->progress_ns && now - s->progress_ns > kStuckStartNs &&
        s->shared->started_seq.load(std::memory_order_acquire) == 0 && s->tasks.free_space() != s->tasks.capacity())
      os::pidfd_send_signal(s->pidfd.get(), SIGKILL);
  // Without this, a stopped or stuck worker's queue would wait for a result that never comes.
  rescue_stalled(now);
  return os::Nanos(kRescueCheckNs);
}

std::optional<os::Nanos> ProcessPoolCore::enforce_time_limits() {
  std::lock_guard lock(mu_);
  if (!options_.task_timeout && !per_call_limits_) return std::nullopt;
  // A chunk that starts while we sleep is noticed at the next check: at most 10 ms late.
  std::int64_t next = 10'000'000;
  const std::int64_t now = now_ns();
  for (auto& s : slots_) {
    if (!s->alive || s->inflight.empty()) continue;
    const Record& running = s->inflight.front();
    if (!running.limit_ns || s->timed_out_seq == running.seq) continue;
    if (s->shared->started_seq.load(std::memory_order_acquire) != running.seq) continue;
    std::int64_t left = s->shared->started_ns.load(std::memory_order_relaxed) + running.limit_ns - now;
    if (left <= 0) {
      s->timed_out_seq = running.seq;
      os::pidfd_send_signal(s->pidfd.get(), SIGKILL);
    } else {
      next = std::min(next, left);
    }
  }
  return os::Nanos(next);
}

void ProcessPoolCore::fail_pending_if_no_workers(std::vector<Record>& failed) {
  if (std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->alive; })) return;
  std::string why = "mproc: the pool has no workers left";
  if (init_failures_ >= 3) {
    why += ": the initializer failed " + std::to_string(init_failures_) + " times in a row";
    try {
      if (init_error_) std::rethrow_exception(init_error_);
    } catch (const std::exception& e) {
      why += std::string(" (") + e.what() + ")";
    } catch (...) {
    }
  }
  broken_ = why;
  for (auto& r : pending_) failed.push_back(std::move(r));
  outstanding_ -= pending_.size();
  pending_.clear();
}

void ProcessPoolCore::on_exit(Slot& slot) {
  slot.dead.store(true);
  wake_result_thread();  // a collector waiting for the rest of this worker's message gives up
  os::ExitStatus status = os::wait_pidfd(slot.pidfd.get(), true).value_or(os::ExitStatus{});
  const pid_t dead_pid = slot.pid;  // spawn() below gives the slot its replacement's pid
  std::optional<Record> lost;
  bool timed_out = false;
  std::vector<Record> unrunnable;
  {
    std::lock_guard role(role_mu_);
    t_collecting = true;
    drain_slot(slot);  // results it finished before dying still count
    t_collecting = false;
    std::lock_guard lock(mu_);
    slot.alive = false;
    slot.pidfd.reset();
    if (!slot.inflight.empty() &&
        slot.shared->started_seq.load(std::memory_order_acquire) == slot.inflight.front().seq) {
      lost = std::move(slot.inflight.front());
      slot.inflight.pop_front();
      --outstanding_;
      timed_out = lost->seq == slot.timed_out_seq;
    }
    // Chunks it had not started go to the other workers, ahead of newer work.
    while (!slot.inflight.empty()) {
      pending_.push_front(std::move(slot.inflight.back()));
      slot.inflight.pop_back();
    }
    bool needed = state_ == State::running || outstanding_ > 0;
    if (!stopping_workers_ && needed && init_failures_ < 3) {
      try {
        spawn(slot);
      } catch (...) {
        // Cannot replace it now (fork failed): the remaining workers carry on.
      }
    }
    fail_pending_if_no_workers(unrunnable);
    dispatch();
    changed_.notify_all();
  }
  if (lost) {
    std::exception_ptr error =
        timed_out ? std::make_exception_ptr(TimeoutError("mproc: the task ran longer than its time limit of " +
                                                         std::to_string(lost->limit_ns / 1'000'000) +
                                                         " ms; its worker was killed and replaced"))
                  : std::make_exception_ptr(
                        WorkerLost(dead_pid, status.signaled ? status.signal : 0, status.signaled ? 0 : status.code));
    lost->job->fail(lost->first, lost->count, error);
  }
  if (!unrunnable.empty()) {
    std::string why;
    {
      std::lock_guard lock(mu_);
      why = broken_;
    }
    auto error = std::make_exception_ptr(PoolNotRunning(why));
    for (auto& r : unrunnable) r.job->fail(r.first, r.count, error);
  }
  wake_result_thread();  // for completions deferred while this thread held the role
}

// --- shutting down ----------------------------------------------------------------------------

void ProcessPoolCore::close() {
  std::lock_guard lock(mu_);
  if (state_ == State::running) state_ = State::closed;
}

void ProcessPoolCore::join() {
  if (std::this_thread::get_id() == result_thread_id_)
    throw std::logic_error(
        "mproc: Pool::join: called from a callback of the same pool, whose thread delivers the results it would "
        "wait for; join elsewhere, or call terminate()");
  {
    std::unique_lock lock(mu_);
    if (state_ == State::running) throw std::logic_error("mproc: Pool::join: call close() or terminate() first");
    const std::uint64_t interrupts = interrupt_count();
    while (
        !changed_.wait_for(lock, kInterruptCheck, [this] { return outstanding_ == 0 || state_ == State::terminated; }))
      throw_if_interrupted(interrupts);
    stopping_workers_ = true;
    const std::uint64_t stop = kControlSeq;
    // A stalled worker may never read its stop (stuck, say, on a lock held at its fork).
    for (auto& s : slots_)
      if (s->alive && (s->stalled || !s->tasks.try_send(bytes_of(stop), {})))
        os::pidfd_send_signal(s->pidfd.get(), SIGKILL);
    auto all_gone = [this] {
      return std::none_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->alive; });
    };
    if (!changed_.wait_for(lock, kStopGrace, all_gone)) {
      kill_all();
      changed_.wait(lock, all_gone);
    }
  }
  stop_threads();
}

void ProcessPoolCore::kill_all() {
  for (auto& s : slots_)
    if (s->alive) os::pidfd_send_signal(s->pidfd.get(), SIGKILL);
}

void ProcessPoolCore::terminate() {
  std::vector<Record> dropped;
  {
    std::lock_guard lock(mu_);
    state_ = State::terminated;
    stopping_workers_ = true;
    for (auto& r : pending_) dropped.push_back(std::move(r));
    pending_.clear();
    for (auto& s : slots_) {
      for (auto& r : s->inflight) dropped.push_back(std::move(r));
      s->inflight.clear();
    }
    outstanding_ -= dropped.size();
    kill_all();
    changed_.notify_all();
  }
  auto error = std::make_exception_ptr(PoolNotRunning("mproc: the pool was terminated before this task finished"));
  for (auto& r : dropped) r.job->fail(r.first, r.count, error);
  // From a callback, this thread holds the collecting role, which the watcher needs to reap the
  // workers: they are killed, and reaped once the callback returns; join() or the destructor
  // waits for them and stops the pool's threads.
  if (std::this_thread::get_id() == result_thread_id_) return;
  {
    std::unique_lock lock(mu_);
    changed_.wait(
        lock, [this] { return std::none_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->alive; }); });
  }
  stop_threads();
}

void ProcessPoolCore::stop_threads() {
  stop_threads_.store(true);
  wake_watcher();
  wake_result_thread();
  std::lock_guard lock(join_mu_);
  for (std::thread* t : {&watch_thread_, &result_thread_})
    if (t->joinable()) t->join();
}

std::vector<int> ProcessPoolCore::worker_pids() {
  std::lock_guard lock(mu_);
  std::vector<int> pids;
  for (auto& s : slots_) pids.push_back(s->alive ? s->pid : 0);
  return pids;
}

// --- ProcessBackend ---------------------------------------------------------------------------

ProcessBackend::ProcessBackend(PoolOptions options)
    : regions_before_(shared_regions_made()), core_(std::make_unique<ProcessPoolCore>(std::move(options))) {}
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
std::vector<int> ProcessBackend::worker_pids() const { return core_->worker_pids(); }

void ProcessBackend::shutdown() noexcept {
  try {
    core_->close();
    core_->join();
  } catch (...) {
    core_->terminate();
  }
}

Writer ProcessBackend::take_buffer() { return core_->take_buffer(); }

void ProcessBackend::enqueue(std::shared_ptr<JobBase> job, std::size_t first, std::size_t count, Writer payload) {
  core_->enqueue(Record{std::move(job), first, count, std::move(payload), 0});
}

}  // namespace mproc::detail
