#include "backend/thread/pool_core.hpp"

#include <chrono>
#include <stdexcept>
#include <utility>

#include "backoff.hpp"
#include "mproc/errors.hpp"
#include "os/os.hpp"
#include "worker_identity.hpp"

#if defined(__SANITIZE_THREAD__)
#define MPROC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MPROC_TSAN 1
#endif
#endif

#ifdef MPROC_TSAN
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif

namespace mproc::detail {
namespace {

// While alive, ThreadSanitizer does not check this thread's memory accesses (frees included);
// synchronization is still tracked. For release_shared() alone: a task's exception crosses
// threads inside a std::exception_ptr, the caller reads it after get() or imap rethrows it, and
// whichever thread drops the last reference destroys it, often a worker letting go of its
// finished job or of its own copy. What orders the caller's reads before that destruction is
// the exception's reference count (and that of the message a std::runtime_error shares between
// copies), kept by libstdc++.so, which is not instrumented: ThreadSanitizer would report the
// free as racing with the caller's what() or typeid (seen in
// behaviour.StandardExceptionsKeepTheirTypeAndMessage, RegisteredExceptionKeepsItsType and
// ImapTaskErrorReachesTheLoop). A suppression by function name cannot catch it reliably: the
// frames between our code and the free are libstdc++'s, which the report does not show.
struct TsanIgnoreAccesses {
#ifdef MPROC_TSAN
  TsanIgnoreAccesses() noexcept { __tsan_ignore_thread_begin(); }
  ~TsanIgnoreAccesses() { __tsan_ignore_thread_end(); }
  TsanIgnoreAccesses(const TsanIgnoreAccesses&) = delete;
  TsanIgnoreAccesses& operator=(const TsanIgnoreAccesses&) = delete;
#endif
};

// Which pool, and which of its workers, the current thread is.
thread_local ThreadPoolCore* t_pool = nullptr;
thread_local unsigned t_index = 0;
// Tasks the current thread submitted since it last waited on a job (see wake_for_push).
thread_local unsigned t_pushes_unwaited = 0;
// The pool whose callback mutex the current thread holds: a callback that waits on its pool
// may finish other jobs, whose callbacks then run nested rather than deadlock.
thread_local const ThreadPoolCore* t_in_callbacks = nullptr;

// For insights: when the current worker thread was ready for work, and when its last chunk ended.
thread_local std::int64_t t_ready_ns = 0;
thread_local std::int64_t t_last_end_ns = 0;
thread_local int t_pid = 0;  // read once per worker: getpid() is a system call

// A chunk a worker times (insights), and where its timing goes once its items ran.
struct TimedChunk {
  ItemClock clock;
  InsightsRecorder* insights;
  const ThreadTask* task;
};

void record_thread_chunk(ItemClock& clock, JobBase& job, const char* kind) {
  auto& chunk = *static_cast<TimedChunk*>(clock.owner);
  ChunkTiming timing{.start_ns = clock.start_ns,
                     .end_ns = now_ns(),
                     .idle_ns = clock.start_ns - t_last_end_ns,
                     .ready_ns = t_ready_ns,
                     .pid = t_pid ? t_pid : static_cast<int>(os::getpid())};
  take_item_times(timing, clock);
  t_last_end_ns = timing.end_ns;
  chunk.insights->number_call(job, kind);
  chunk.insights->chunk(t_index, job, chunk.task->first, chunk.task->count, timing);
}

// A job finished outside the pool, sent to a worker to run its callbacks.
void run_completion(ThreadTask& task) noexcept { t_pool->complete_on_pool_thread(*task.job); }

}  // namespace

ThreadPoolCore::ThreadPoolCore(PoolOptions options) : options_(std::move(options)) {
  const unsigned n = checked_pool_size(options_);
  if (options_.task_timeout)
    throw std::invalid_argument("mproc: ThreadPool cannot enforce task_timeout: a thread cannot be killed");
  if (options_.output != Output::inherit)
    throw std::invalid_argument("mproc: ThreadPool cannot forward output by lines: its threads share the program's");
  if (options_.max_worker_rss)
    throw std::invalid_argument("mproc: ThreadPool cannot enforce max_worker_rss: its threads share one resident set");
  if (options_.memory_limit)
    throw std::invalid_argument(
        "mproc: ThreadPool cannot enforce memory_limit: its threads share one process's memory");
  for (unsigned i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>());
  if (options_.insights) {
    insights_ = std::make_unique<InsightsRecorder>("thread", n);
    for (unsigned i = 0; i < n; ++i) insights_->started(i, static_cast<int>(os::getpid()), now_ns());
  }
  try {
    for (unsigned i = 0; i < n; ++i) workers_[i]->thread = std::thread([this, i] { worker_loop(i); });
  } catch (...) {
    terminate();
    throw;
  }
  if (!options_.initializer) return;
  std::exception_ptr error;
  {
    std::unique_lock lock(start_mu_);
    started_cv_.wait(lock, [&] { return started_ == n; });
    error = init_error_;
  }
  if (error) {
    terminate();
    std::rethrow_exception(error);
  }
}

ThreadPoolCore::~ThreadPoolCore() {
  try {
    terminate();  // a no-op after join()
  } catch (...) {
    // Only a pool's own thread gets here, destroying its pool: nothing sensible remains.
  }
}

void ThreadPoolCore::throw_not_running(std::uint32_t state) const {
  throw PoolNotRunning(state == kTerminated ? "mproc: the pool was terminated" : "mproc: the pool is closed");
}

void ThreadPoolCore::check_running() const {
  std::uint32_t s = state_.load(std::memory_order_acquire);
  if (s != kRunning) throw_not_running(s);
}

// --- queues and workers ----------------------------------------------------------------------

void ThreadPoolCore::enqueue(ThreadTask&& task) {
  std::uint32_t s = state_.load(std::memory_order_acquire);
  if (s != kRunning) throw_not_running(s);
  // A worker's own submissions stay with it (others steal them if idle); outside ones rotate.
  unsigned target = t_pool == this ? t_index : outside_target();
  // A join or terminate that began since the check above has closed the queues.
  if (!workers_[target]->queue.push(std::move(task))) throw_not_running(state_.load(std::memory_order_acquire));
  wake_for_push(target, ++t_pushes_unwaited > 1);
}

unsigned ThreadPoolCore::outside_target() const noexcept {
  thread_local unsigned t_next = 0;
  unsigned target = t_next < size() ? t_next : 0;  // no division: this is on every submission's path
  t_next = target + 1;
  return target;
}

void ThreadPoolCore::stop_pushes() noexcept {
  for (auto& w : workers_) w->queue.close();
}

bool ThreadPoolCore::find_task(unsigned index, ThreadTask& out) {
  if (workers_[index]->queue.pop(out, false)) return true;
  const unsigned n = size();
  for (unsigned k = 1; k < n; ++k) {
    unsigned j = index + k < n ? index + k : index + k - n;
    if (workers_[j]->queue.pop(out, true)) return true;
  }
  return false;
}

bool ThreadPoolCore::all_empty() const noexcept {
  for (const auto& w : workers_)
    if (!w->queue.empty()) return false;
  return true;
}

void ThreadPoolCore::run_timed(ThreadTask& task) noexcept {
  TimedChunk chunk{.clock = {}, .insights = insights_.get(), .task = &task};
  chunk.clock.ran = &record_thread_chunk;
  chunk.clock.owner = &chunk;
  ItemClock* outer = std::exchange(t_item_clock, &chunk.clock);  // a waiting worker runs tasks nested
  task.run(task);
  t_item_clock = outer;
}

void ThreadPoolCore::run(ThreadTask& task) noexcept {
  if (task.run == &run_completion)
    task.run(task);
  else if (!task.job->begin_chunk())  // cancelled before it started: it never runs
    task.job->skip_chunk(task.first, task.count);
  else if (state_.load(std::memory_order_relaxed) == kTerminated)
    task.job->fail(task.first, task.count,
                   std::make_exception_ptr(PoolNotRunning("mproc: the pool was terminated before this task started")));
  else if (insights_)
    run_timed(task);
  else
    task.run(task);
  // Let go of the job and the arguments now, not when the slot is next reused.
  release_shared(task.job);
  task.keep_alive.reset();
}

void release_shared(std::exception_ptr& error) noexcept {
  [[maybe_unused]] TsanIgnoreAccesses ignore;
  error = nullptr;
}

void release_shared(std::shared_ptr<JobBase>& job) noexcept {
  [[maybe_unused]] TsanIgnoreAccesses ignore;
  job.reset();
}

void ThreadPoolCore::worker_loop(unsigned index) {
  t_pool = this;
  t_index = index;
  t_on_pool_thread = true;
  set_thread_worker_id(index);
  if (options_.initializer) {
    std::exception_ptr error;
    try {
      options_.initializer();
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard lock(start_mu_);
    if (error && !init_error_) init_error_ = error;
    if (++started_ == size()) started_cv_.notify_all();
  }
  t_ready_ns = t_last_end_ns = now_ns();
  t_pid = static_cast<int>(os::getpid());
  Worker& me = *workers_[index];
  ThreadTask task;
  for (;;) {
    if (find_task(index, task)) {
      run(task);
      continue;
    }
    if (spin(index, task)) {
      run(task);
      continue;
    }
    // After stop_ nothing is pushed, so empty queues stay empty.
    if (stop_.load(std::memory_order_acquire)) {
      if (all_empty()) return;
      continue;
    }
    sleep(me);
  }
}

// --- sleeping and waking ---------------------------------------------------------------------

bool ThreadPoolCore::spin(unsigned index, ThreadTask& task) {
  // The next task is often a moment away, so an idle worker looks again for a while before it
  // sleeps; but only one at a time. With as many workers as CPUs, a second spinner would take
  // the CPU of the thread that submits (or waits for a result), and pushes need not wake anyone
  // while one worker spins.
  std::uint32_t none = 0;
  if (!spinning_.compare_exchange_strong(none, 1, std::memory_order_seq_cst)) return false;
  bool found = false;
  for (Backoff backoff(waits::kThreadIdleWorker);;) {
    if (find_task(index, task)) {
      found = true;
      break;
    }
    if (stop_.load(std::memory_order_acquire) || !backoff.pause()) break;
  }
  spinning_.store(0, std::memory_order_seq_cst);
  if (found) {
    // Pushes made while we spun woke no one: if one is still queued, wake a worker for it.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!all_empty()) wake_one(index + 1 < size() ? index + 1 : 0);
  }
  return found;
}

void ThreadPoolCore::wake_for_push(unsigned target, bool in_a_row) noexcept {
  // The push before the look at spinning_ and sleepers_: a worker that stops spinning or goes
  // to sleep looks at the queues after announcing it, so one of the two sees the other.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // A spinning worker takes one task; a second one queued behind it (a map's chunks, a burst of
  // apply_async) is for a sleeper, woken now rather than when the spinner finds its own. Only a
  // push in a row can have left two: a lone one (apply, then get) skips reading the pops' count.
  if (spinning_.load(std::memory_order_relaxed) == 0 ||
      (in_a_row && sleepers_.load(std::memory_order_relaxed) != 0 && workers_[target]->queue.size() > 1))
    wake_one(target);
}

void ThreadPoolCore::sleep(Worker& w) {
  w.asleep.store(1, std::memory_order_seq_cst);
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // announce, then look: a push either sees us or is seen
  // Queued work is ours to take unless a worker spins: it takes the work, and when it stops
  // spinning it looks at the queues again and wakes a sleeper if work is left. Sleeping then,
  // rather than racing the spinner for every task, leaves this CPU to the submitting thread.
  if (stop_.load(std::memory_order_seq_cst) || (spinning_.load(std::memory_order_seq_cst) == 0 && !all_empty())) {
    claim(w);  // if a waker got there first, it already did
    return;
  }
  while (w.asleep.load(std::memory_order_acquire) == 1) {
    if (!os::futex_wait(w.asleep, 1, waits::kThreadIdleWorker.sleep, false)) {
      claim(w);
      return;
    }
  }
}

bool ThreadPoolCore::claim(Worker& w) noexcept {
  std::uint32_t one = 1;
  if (!w.asleep.compare_exchange_strong(one, 0, std::memory_order_seq_cst)) return false;
  sleepers_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

void ThreadPoolCore::wake_one(unsigned prefer) noexcept {
  if (sleepers_.load(std::memory_order_seq_cst) == 0) return;
  const unsigned n = size();
  for (unsigned k = 0; k < n; ++k) {
    Worker& w = *workers_[prefer + k < n ? prefer + k : prefer + k - n];
    if (w.asleep.load(std::memory_order_relaxed) == 1 && claim(w)) {
      os::futex_wake(w.asleep, 1, false);
      return;
    }
  }
}

void ThreadPoolCore::wake_all() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (auto& w : workers_)
    if (claim(*w)) os::futex_wake(w->asleep, 1, false);
}

// --- JobHost ---------------------------------------------------------------------------------

void ThreadPoolCore::defer_completion(std::shared_ptr<JobBase> job) {
  // Only a thread outside the pool gets here (empty input, a submission that failed midway).
  std::uint32_t s = state_.load(std::memory_order_acquire);
  if (s == kRunning || s == kClosed) {
    ThreadTask task;
    task.run = &run_completion;
    task.job = std::move(job);
    unsigned target = outside_target();
    if (workers_[target]->queue.push(std::move(task))) {
      wake_for_push(target, false);
      return;
    }
    job = std::move(task.job);  // refused: the queues closed since the check
  }
  // The workers are leaving or gone: run the callbacks here, still one at a time.
  complete_on_pool_thread(*job);
}

void ThreadPoolCore::complete_on_pool_thread(JobBase& job) noexcept {
  if (t_in_callbacks == this) {
    job.complete();
    return;
  }
  std::lock_guard lock(callback_mu_);
  const ThreadPoolCore* outer = t_in_callbacks;
  t_in_callbacks = this;
  job.complete();
  t_in_callbacks = outer;
}

bool ThreadPoolCore::cancel(JobBase& job) { return job.close_gate(); }
bool ThreadPoolCore::terminate(JobBase& job) { return job.close_gate() || job.request_stop(); }

bool ThreadPoolCore::wait(JobBase& job, const Deadline& deadline) {
  t_pushes_unwaited = 0;
  if (t_pool != this) {
    // Watch the job without announcing a waiter, so that the worker finishing it need not
    // make a wake-up call; sleep only if it takes longer.
    for (Backoff backoff(waits::kThreadCaller, deadline); !job.ready();)
      if (!backoff.pause()) return job.wait_plain(deadline);
    return true;
  }
  // One of our workers waits (a task or a callback using its own pool): it runs other tasks
  // meanwhile, so a pool never deadlocks on its own waits for want of a free worker.
  ThreadTask task;
  while (!job.ready()) {
    if (find_task(t_index, task)) {
      run(task);
      continue;
    }
    auto now = Clock::now();
    if (deadline && now >= *deadline) return job.ready();
    Deadline slice = now + waits::kThreadHelper.sleep;
    if (deadline && *deadline < *slice) slice = deadline;
    if (job.wait_plain(slice)) return true;
  }
  return true;
}

// --- life cycle ------------------------------------------------------------------------------

void ThreadPoolCore::close() noexcept {
  std::uint32_t s = kRunning;
  state_.compare_exchange_strong(s, kClosed, std::memory_order_seq_cst);
}

void ThreadPoolCore::join() {
  if (t_pool == this) throw std::logic_error("mproc: ThreadPool::join: a task or callback cannot join its own pool");
  if (state_.load(std::memory_order_acquire) == kRunning)
    throw std::logic_error("mproc: Pool::join: call close() or terminate() first");
  std::uint32_t s = kClosed;
  state_.compare_exchange_strong(s, kDraining, std::memory_order_seq_cst);
  stop_pushes();
  join_threads();
}

void ThreadPoolCore::terminate() {
  if (t_pool == this)
    throw std::logic_error("mproc: ThreadPool::terminate: a task or callback cannot terminate its own pool");
  state_.store(kTerminated, std::memory_order_seq_cst);
  stop_pushes();
  join_threads();
}

void ThreadPoolCore::cancel_queued() {
  ThreadTask task;
  for (auto& w : workers_)
    while (w->queue.pop(task, false)) {
      if (task.run == &run_completion) {
        complete_on_pool_thread(*task.job);
      } else {
        task.job->close_gate();  // its chunks that workers took but not yet started never run either
        task.job->skip_chunk(task.first, task.count);
      }
      release_shared(task.job);
      task.keep_alive.reset();
    }
}

void ThreadPoolCore::join_threads() {
  std::lock_guard lock(lifecycle_mu_);
  if (joined_) return;
  stop_.store(true, std::memory_order_seq_cst);
  wake_all();
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  joined_ = true;
}

// --- ThreadBackend ---------------------------------------------------------------------------

ThreadBackend::ThreadBackend(PoolOptions options) : core_(std::make_unique<ThreadPoolCore>(std::move(options))) {}
ThreadBackend::~ThreadBackend() = default;
unsigned ThreadBackend::size() const noexcept { return core_->size(); }
JobHost* ThreadBackend::host() noexcept { return core_.get(); }
void ThreadBackend::check_running() const { core_->check_running(); }
void ThreadBackend::enqueue(ThreadTask&& task) { core_->enqueue(std::move(task)); }
void ThreadBackend::close() { core_->close(); }
void ThreadBackend::join() { core_->join(); }
void ThreadBackend::terminate() { core_->terminate(); }
void ThreadBackend::cancel_queued() { core_->cancel_queued(); }
const InsightsRecorder* ThreadBackend::insights() const noexcept { return core_->insights(); }

void ThreadBackend::shutdown() noexcept {
  try {
    core_->close();
    core_->join();
  } catch (...) {
    try {
      core_->terminate();
    } catch (...) {
      // Called from the pool's own thread: the core's destructor is left to try again.
    }
  }
}

}  // namespace mproc::detail
