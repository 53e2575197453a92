// job.hpp: JobBase and its kinds — ValueJob (one task: apply_async), ListJob (many tasks whose
// results are gathered in order: map, starmap and their async forms), IntoJob (likewise, into the
// caller's memory: map_into, starmap_into) and StreamJob (results handed out one by one: imap,
// imap_unordered). A job is the state a front end call shares with
// a backend: the backend reports each item's result or exception; the job completes, runs its
// callbacks on a pool thread, and wakes whoever waits. A job is also a future's state (futures.hpp):
// its run gate says whether it was cancelled, and JobExtras hold its done callbacks.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "mproc/detail/interrupt.hpp"
#include "mproc/detail/job_host.hpp"
#include "mproc/detail/wait.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {

// Work a host hands to a thread that waits for the job, to do there (JobBase::hand_to_waiter): a
// process pool's big result, read by the thread that will use it. Its pages are then committed on
// that thread's CPU (on a VM here, memory freed on one CPU and committed on another can cost a
// host fault per huge page; on a NUMA machine, it is first touched on the user's node), and two
// callers' results are read at once, not one after the other on the pool's result thread.
class HandedWork {
 public:
  virtual ~HandedWork() = default;
  // Reads the results into the job, which it may complete.
  virtual void run() noexcept = 0;
  // Called once, after run(): when run() completed the job, as soon as it is marked done, before
  // its done callbacks, which may end the pool; else once run() returned. Lets go of the host.
  virtual void release() noexcept = 0;
};

// What few jobs need, made on first use so that a job without them stays small: a call's own task
// limits, a future's done callbacks (add_done_callback, and the waiters of as_completed and
// wait), run once when the job completes, and the work handed to its waiters.
struct JobExtras {
  std::optional<std::chrono::nanoseconds> task_timeout;  // written before the job's first task is submitted
  std::int16_t retries = -1;                             // likewise; -1: the pool's
  std::mutex mu;
  bool done = false;  // the callbacks below ran; guarded by mu
  // Each with its key (add_on_done's), so that a waiter that returns first can take its own back.
  std::vector<std::pair<std::uint64_t, std::function<void()>>> on_done;  // guarded by mu
  std::uint64_t last_key = 0;                                            // guarded by mu
  std::function<bool()> stop;          // asks a running task to stop (std::stop_token); guarded by mu
  int workers = 0;                     // threads in wait_working(), which do handed work; guarded by mu
  std::unique_ptr<HandedWork> handed;  // handed over, not yet taken; guarded by mu
  HandedWork* running = nullptr;       // taken, running, not yet released; guarded by mu
};

// The error of a task or chunk that cancel() or terminate() kept from running or stopped.
[[nodiscard]] std::exception_ptr cancelled_error();
// Reports a done callback's exception on stderr, as Python's concurrent.futures logs it: a done
// callback has no caller to throw to, and must not end the pool's thread.
void report_done_callback_error(std::exception_ptr e) noexcept;
// A call's progress (mproc/progress.hpp): told the items done so far, and the total once known.
class ProgressMeter;
void report_progress(ProgressMeter& meter, std::size_t done) noexcept;
void report_total(ProgressMeter& meter, std::size_t total) noexcept;

class JobBase : public std::enable_shared_from_this<JobBase> {
 public:
  JobBase(JobHost* host, std::size_t items) : host_(host), remaining_(items) {}
  JobBase(const JobBase&) = delete;
  JobBase& operator=(const JobBase&) = delete;
  virtual ~JobBase() { delete extras_.load(std::memory_order_acquire); }

  // Items [first, first + count) failed as a whole: worker lost, pool terminated, bad encoding.
  virtual void fail(std::size_t first, std::size_t count, const std::exception_ptr& e) = 0;
  // Runs the callbacks and marks the job ready; called on a pool thread.
  void complete() noexcept;

  [[nodiscard]] bool ready() const noexcept { return state_.load(std::memory_order_acquire) == kDone; }
  // What a waiter waits for: completion (ready()), or for a stream its next result.
  [[nodiscard]] virtual bool satisfied() noexcept { return ready(); }
  // The pool that runs it; once it is done, maybe gone (a future outlives its pool).
  [[nodiscard]] JobHost* host() const noexcept { return host_; }
  // Waits until satisfied or the deadline passes; returns satisfied(). Hosts may make progress
  // meanwhile (a process pool's waiter collects results itself).
  bool wait(const Deadline& deadline) {
    return satisfied() || (host_ ? host_->wait(*this, deadline) : wait_plain(deadline));
  }
  // Sleeps until satisfied, for hosts with nothing better to do meanwhile. Throws Interrupted.
  virtual bool wait_plain(const Deadline& deadline);
  // As wait_plain, and does the work a host hands over meanwhile (hand_to_waiter). Work handed
  // over before it returns or throws is done, here or by another thread in it.
  bool wait_working(const Deadline& deadline);
  // Hands work to a thread in wait_working(); false (work kept) when none is there, or work
  // handed before is not done yet: the caller does it then. A job with callbacks takes none, as
  // they run on a pool thread.
  bool hand_to_waiter(std::unique_ptr<HandedWork>& work);
  [[nodiscard]] bool successful() const noexcept { return !(gate_.load(std::memory_order_acquire) & kFailed); }
  [[nodiscard]] const std::exception_ptr& error() const noexcept { return error_; }
  // For a host that must not block its pool: a caller waiting on this job from a pool thread.
  [[nodiscard]] const std::atomic<std::uint32_t>& state_word() const noexcept { return state_; }
  // A time limit for each of this job's tasks, in place of the pool's (TaskTimeout); set before
  // the job's first task is submitted.
  [[nodiscard]] std::optional<std::chrono::nanoseconds> task_timeout() const noexcept {
    const JobExtras* x = extras_.load(std::memory_order_acquire);
    return x ? x->task_timeout : std::nullopt;
  }
  void set_task_timeout(std::optional<std::chrono::nanoseconds> limit) {
    if (limit) extras().task_timeout = limit;
  }
  // The number of the call this job is, 1 up, for a pool that records insights; 0 until it
  // numbers it (InsightsRecorder::number_call, under its lock; read without it once set).
  [[nodiscard]] std::uint32_t call_number() const noexcept { return call_.load(std::memory_order_acquire); }
  void set_call_number(std::uint32_t n) noexcept { call_.store(n, std::memory_order_release); }
  // Retries for each of this job's tasks, in place of the pool's (Retries); set likewise.
  [[nodiscard]] std::optional<int> retries() const noexcept {
    const JobExtras* x = extras_.load(std::memory_order_acquire);
    return x && x->retries >= 0 ? std::optional<int>(x->retries) : std::nullopt;
  }
  void set_retries(std::optional<int> n) {
    if (n) extras().retries = static_cast<std::int16_t>(*n);
  }

  // --- a future's state (futures.hpp) ----------------------------------------------------------
  // The run gate, for backends that start chunks in this process (ThreadBackend): a chunk starts
  // only if begin_chunk() returns true. With close_gate() each is one atomic step on one word, so
  // a chunk either starts before the cancel (and runs) or after it (and never runs).
  [[nodiscard]] bool begin_chunk() noexcept {
    return !(gate_.fetch_add(kStarted, std::memory_order_acq_rel) & kCancelRequested);
  }
  // For a backend that learns of a start later (a process pool: a result or a loss): counts it.
  void note_started() noexcept { gate_.fetch_add(kStarted, std::memory_order_relaxed); }
  [[nodiscard]] std::uint32_t chunks_started() const noexcept {
    return gate_.load(std::memory_order_acquire) / kStarted;
  }
  // Asks for a cancel; false when one was asked before (which decided). A cancel that keeps
  // nothing from running must not ask: the mark refuses a chunk lost with its worker its retry.
  bool request_cancel() noexcept {
    return !(gate_.fetch_or(kCancelRequested, std::memory_order_acq_rel) & kCancelRequested);
  }
  [[nodiscard]] bool cancel_requested() const noexcept {
    return gate_.load(std::memory_order_acquire) & kCancelRequested;
  }
  // cancel() or terminate() kept some of its work from running (or stopped it): it is cancelled.
  void mark_cancelled() noexcept { gate_.fetch_or(kCancelledOk, std::memory_order_acq_rel); }
  [[nodiscard]] bool cancelled() const noexcept { return gate_.load(std::memory_order_acquire) & kCancelledOk; }
  // The run gate's cancel, for hosts that use begin_chunk(): closes the gate; true when a chunk
  // had not started (it never will). A job of one task then fails with CancelledError at once.
  // When every chunk started already, the gate stays open and unmarked: the cancel did nothing.
  bool close_gate() noexcept;
  // A chunk the gate kept from running: its items fail with CancelledError; a one-task job
  // already failed in close_gate().
  virtual void skip_chunk(std::size_t first, std::size_t count) noexcept { fail(first, count, cancelled_error()); }
  // Chunks submitted so far (set by the front end before it submits them).
  [[nodiscard]] virtual std::size_t chunks() const noexcept { return 1; }
  // Whether each chunk's results are wanted as soon as they are done (a stream's reader, a
  // progress meter), not only all of them at the end: a process pool then reads each at once.
  [[nodiscard]] virtual bool wants_each_result() const noexcept { return watched_.load(std::memory_order_acquire); }
  // The host's cancel, running and terminate (JobHost); false once done: a host may be gone then
  // (a future outlives its pool, which finished its work first).
  // A cancelled job says so again, as Python's cancel() does.
  bool cancel() { return cancelled() || (!ready() && host_ && host_->cancel(*this)); }
  [[nodiscard]] bool running() { return !ready() && host_ && host_->running(*this); }
  bool terminate() { return !ready() && host_ && host_->terminate(*this); }
  // Runs fn once the job is done: at once, here, when it is already; else on the thread that
  // completes it. An exception from fn is reported (report_done_callback_error), never thrown.
  // Returns 0 when fn ran here, else a key for remove_on_done.
  std::uint64_t add_on_done(std::function<void()> fn);
  // Takes back fn of add_on_done's key, unless it runs or ran already (then nothing happens). For
  // a waiter that stops waiting (as_completed, wait): its callbacks must not pile up on the job.
  void remove_on_done(std::uint64_t key) noexcept;
  // The done callbacks registered and not yet run; for tests.
  [[nodiscard]] std::size_t on_done_count() const noexcept;
  // For a task given a std::stop_token: how terminate() asks it to stop.
  void set_stop(std::function<bool()> stop);
  // Asks the task to stop; false when it cannot be asked (no std::stop_token) or was already.
  bool request_stop();

 protected:
  // Records the first error; the job fails with it.
  void record_error(const std::exception_ptr& e) noexcept;
  // Called after count items were recorded; the last one completes the job.
  void items_done(std::size_t count) noexcept;
  virtual void run_callbacks() = 0;
  [[nodiscard]] virtual bool has_callbacks() const noexcept { return false; }
  // A one-task job whose cancel succeeded fails here; a map's chunks fail as they are dropped.
  virtual void on_cancelled() noexcept {}
  // Items not yet done, for a job's progress.
  [[nodiscard]] std::size_t remaining() const noexcept { return remaining_.load(std::memory_order_acquire); }
  // After its meter is set: from then on every items_done() reports progress.
  void watched() noexcept {
    watched_.store(true, std::memory_order_release);
    progressed();
  }
  // Reports the job's progress to its meter; only once watched().
  virtual void progressed() noexcept {}
  // Whether its waiters wait for its completion (satisfied() is ready()): wait_working() then
  // does handed work; else it waits as wait_plain() does.
  [[nodiscard]] virtual bool completes_whole() const noexcept { return false; }
  // For wait_working(), before it sleeps: readies the memory a big result it may read will take;
  // true when it made some, which finish_reading() drops if no read took it.
  virtual bool prepare_to_read() noexcept { return false; }
  virtual void finish_reading() noexcept {}

 private:
  // kHanded: work was handed to a waiter (kWaiting again once it took it).
  static constexpr std::uint32_t kPending = 0, kWaiting = 1, kDone = 2, kHanded = 3;
  // gate_: flags in the low bits, the count of chunks started above them.
  static constexpr std::uint32_t kFailed = 1, kCancelRequested = 2, kCancelledOk = 4, kStarted = 8;

  JobExtras& extras();
  void run_done_callbacks(JobExtras& x) noexcept;
  // Takes work handed over and does it; leaving: the last waiter to leave does it.
  void do_handed_work(JobExtras& x, bool leaving) noexcept;

  // In this order, without padding between them: a ValueJob and its shared_ptr's count then fit
  // in 112 bytes of heap, not 128 (at 10000 fire-and-forget tasks, what the caches hold or not).
  JobHost* host_;
  std::atomic<std::size_t> remaining_;
  std::exception_ptr error_;  // written once, by whoever set kFailed, before remaining_ reaches 0
  std::atomic<std::uint32_t> state_{kPending};
  std::atomic<std::uint32_t> gate_{0};       // kFailed, the run gate and the chunks started
  std::atomic<bool> watched_{false};         // a meter counts its items (Progress); in what was padding
  std::atomic<std::uint32_t> call_{0};       // its call's number (insights); likewise
  std::atomic<JobExtras*> extras_{nullptr};  // owned; made on first use
};

// Storage for one result per item. R that is not default-constructible, and bool (whose
// vector packs bits, so neighbours cannot be written from two threads), are kept in optionals.
template <class R>
using ResultSlot =
    std::conditional_t<std::is_default_constructible_v<R> && !std::is_same_v<R, bool>, R, std::optional<R>>;

// How a thread that waits for a result of type R readies memory for it (TypedJob::prepare_to_read):
// the codec's spare buffers (prepare_spare, unprepare_spare), installed by the process backend
// when it submits a job of R. Here, where the codec is not included, none: a thread pool's results
// are not read from bytes.
struct ReadyingHooks {
  bool (*prepare)() noexcept;
  void (*finish)() noexcept;
};
template <class R>
struct ResultReadying {
  static inline std::atomic<const ReadyingHooks*> hooks{nullptr};
};

// A job whose items' results a thread backend sets directly.
template <class R>
class TypedJob : public JobBase {
 public:
  using JobBase::JobBase;
  virtual void set_value(std::size_t index, R&& value) = 0;
  virtual void set_error(std::size_t index, const std::exception_ptr& e) = 0;
  // Results of items [first, first + count) as their bytes back to back (R is sent as its bytes).
  virtual void set_values(std::size_t first, std::size_t count, const std::byte* bytes) {
    if constexpr (std::is_trivially_copyable_v<R>) {
      for (std::size_t i = 0; i < count; ++i) {
        std::array<std::byte, sizeof(R)> one;
        std::memcpy(one.data(), bytes + i * sizeof(R), sizeof(R));
        set_value(first + i, std::bit_cast<R>(one));
      }
    }
  }
  // Where workers that share this process's memory may write the results of items from first
  // on themselves (IntoJob over memory in the shared heap), or nullptr: they send them instead.
  [[nodiscard]] virtual R* destination(std::size_t first) noexcept {
    (void)first;
    return nullptr;
  }
  // Called after a run of set_value/set_error calls for count items.
  void done(std::size_t count) noexcept { items_done(count); }

  void fail(std::size_t first, std::size_t count, const std::exception_ptr& e) final {
    for (std::size_t i = 0; i < count; ++i) set_error(first + i, e);
    items_done(count);
  }

 protected:
  [[nodiscard]] bool completes_whole() const noexcept override { return true; }
  bool prepare_to_read() noexcept override {
    const ReadyingHooks* hooks = ResultReadying<R>::hooks.load(std::memory_order_acquire);
    return hooks && hooks->prepare();
  }
  void finish_reading() noexcept override { ResultReadying<R>::hooks.load(std::memory_order_acquire)->finish(); }
};

// A job's callbacks, kept out of line: most calls have none, and a job that fits in fewer cache
// lines costs less to create and to hand from thread to thread.
template <class V>
class Callbacks {
 public:
  using OnValue = std::function<void(const V&)>;
  using OnError = std::function<void(std::exception_ptr)>;

  Callbacks(OnValue on_value, OnError on_error)
      : fns_(on_value || on_error ? new Fns{std::move(on_value), std::move(on_error)} : nullptr) {}

  [[nodiscard]] bool any() const noexcept { return fns_ != nullptr; }
  // The value callback, given value(), if the job succeeded; else the error callback.
  template <class GetValue>
  void run(const JobBase& job, GetValue&& value) const {
    if (!fns_) return;
    if (job.successful()) {
      if (fns_->on_value) fns_->on_value(std::forward<GetValue>(value)());
    } else if (fns_->on_error) {
      fns_->on_error(job.error());
    }
  }

 private:
  struct Fns {
    OnValue on_value;
    OnError on_error;
  };
  std::unique_ptr<Fns> fns_;
};

// One task (apply, apply_async).
template <class R>
class ValueJob final : public TypedJob<R> {
 public:
  using Callback = typename Callbacks<R>::OnValue;
  using ErrorCallback = typename Callbacks<R>::OnError;

  ValueJob(JobHost* host, Callback callback, ErrorCallback error_callback)
      : TypedJob<R>(host, 1), callbacks_(std::move(callback), std::move(error_callback)) {}

  void set_value(std::size_t, R&& value) override { value_.emplace(std::move(value)); }
  void set_error(std::size_t, const std::exception_ptr& e) override { this->record_error(e); }

  [[nodiscard]] const R& value() const { return *value_; }
  [[nodiscard]] R take() { return std::move(*value_); }
  [[nodiscard]] bool has_callbacks() const noexcept override { return callbacks_.any(); }
  // Its one chunk failed when cancel() succeeded (on_cancelled): nothing is left to report.
  void skip_chunk(std::size_t, std::size_t) noexcept override {}

 private:
  void run_callbacks() override {
    callbacks_.run(*this, [this]() -> const R& { return *value_; });
  }
  void on_cancelled() noexcept override { this->fail(0, 1, cancelled_error()); }

  std::optional<R> value_;
  Callbacks<R> callbacks_;
};

// Many tasks whose results are kept in input order (map, starmap and their async forms). The
// job completes when every item has reported, so no task still runs on the caller's data.
template <class R>
class ListJob final : public TypedJob<R> {
 public:
  using Callback = typename Callbacks<std::vector<R>>::OnValue;
  using ErrorCallback = typename Callbacks<std::vector<R>>::OnError;

  // Whether its results can be kept in a block of the shared heap, where a process pool's workers
  // write them themselves.
  static constexpr bool can_use_block = std::is_same_v<ResultSlot<R>, R> && std::is_trivially_copyable_v<R>;

  ListJob(JobHost* host, std::size_t n, Callback callback, ErrorCallback error_callback)
      : TypedJob<R>(host, n), slots_(n), callbacks_(std::move(callback), std::move(error_callback)), total_(n) {}
  // Keeps its results in block (can_use_block), n of them, allocated from heap, which it frees:
  // no result vector is zero-filled, and destination() lets workers that map the heap write each
  // result there, so that only take() copies them, once.
  ListJob(JobHost* host, std::size_t n, Callback callback, ErrorCallback error_callback,
          std::pmr::memory_resource* heap, R* block)
      : TypedJob<R>(host, n),
        callbacks_(std::move(callback), std::move(error_callback)),
        total_(n),
        heap_(heap),
        block_(block) {
    static_assert(can_use_block);
  }
  ~ListJob() override {
    if (block_) heap_->deallocate(block_, total_ * sizeof(R), alignof(R));
  }

  void set_value(std::size_t index, R&& value) override {
    if constexpr (can_use_block) {
      if (block_) {
        block_[index] = std::move(value);
        return;
      }
    }
    slots_[index] = std::move(value);
  }
  void set_error(std::size_t, const std::exception_ptr& e) override { this->record_error(e); }
  void set_values(std::size_t first, std::size_t count, const std::byte* bytes) override {
    if constexpr (can_use_block) {
      R* to = block_ ? block_ : slots_.data();
      if (count) std::memcpy(to + first, bytes, count * sizeof(R));  // no items: data() may be null
    } else {
      TypedJob<R>::set_values(first, count, bytes);
    }
  }
  [[nodiscard]] R* destination(std::size_t first) noexcept override {
    return block_ && first < total_ ? block_ + first : nullptr;
  }
  // Where the results of items from first on go, for a worker of this process that stores each
  // itself (ThreadPool's), looking once per task where they are rather than once per item.
  [[nodiscard]] R* results_at(std::size_t first) noexcept requires std::is_same_v<ResultSlot<R>, R> {
    if constexpr (can_use_block)
      if (block_) return block_ + first;
    return slots_.data() + first;
  }

  [[nodiscard]] std::size_t chunks() const noexcept override { return chunks_.load(std::memory_order_acquire); }
  void add_chunks(std::size_t n) noexcept { chunks_.fetch_add(n, std::memory_order_acq_rel); }
  // Counts its items on meter from now on (Progress); call once, before waiting on the job.
  void watch(std::shared_ptr<ProgressMeter> meter) {
    meter_ = std::move(meter);
    this->watched();
  }
  [[nodiscard]] std::size_t size() const noexcept { return total_; }

  [[nodiscard]] std::vector<R> value() const {
    if constexpr (can_use_block)
      if (block_) return std::vector<R>(block_, block_ + total_);
    return gather(slots_);
  }
  [[nodiscard]] std::vector<R> take() {
    if constexpr (can_use_block)
      if (block_) return std::vector<R>(block_, block_ + total_);
    if constexpr (std::is_same_v<ResultSlot<R>, R>)
      return std::move(slots_);
    else
      return gather(std::move(slots_));
  }
  [[nodiscard]] bool has_callbacks() const noexcept override { return callbacks_.any(); }

 private:
  template <class Slots>
  static std::vector<R> gather(Slots&& slots) {
    if constexpr (std::is_same_v<ResultSlot<R>, R>) {
      return std::vector<R>(slots.begin(), slots.end());
    } else {
      std::vector<R> out;
      out.reserve(slots.size());
      for (auto& s : slots) {
        if constexpr (std::is_rvalue_reference_v<Slots&&>)
          out.push_back(std::move(*s));
        else
          out.push_back(*s);
      }
      return out;
    }
  }

  void run_callbacks() override {
    callbacks_.run(*this, [this] { return value(); });
  }
  // On a worker, maybe after another finished the job and its caller took slots_: total_, not slots_.
  void progressed() noexcept override { report_progress(*meter_, total_ - this->remaining()); }

  std::vector<ResultSlot<R>> slots_;  // its results, unless in block_
  Callbacks<std::vector<R>> callbacks_;
  const std::size_t total_;  // its items
  std::pmr::memory_resource* heap_ = nullptr;
  R* block_ = nullptr;  // its results when kept in the heap; freed with the job, after every worker wrote
  std::atomic<std::size_t> chunks_{0};    // submitted so far (add_chunks)
  std::shared_ptr<ProgressMeter> meter_;  // set once by watch()
};

// Many tasks whose results go into the caller's memory, item i to out[i] (map_into,
// starmap_into): no result vector is made, nor zero-filled. Where workers may write there
// themselves (shared, R sent as its bytes), destination() says where.
template <class R>
class IntoJob final : public TypedJob<R> {
 public:
  // workers_write: out lies in memory the pool's workers share, at the same address.
  IntoJob(JobHost* host, std::span<R> out, bool workers_write)
      : TypedJob<R>(host, out.size()), out_(out), workers_write_(workers_write) {}

  void set_value(std::size_t index, R&& value) override { out_[index] = std::move(value); }
  void set_error(std::size_t, const std::exception_ptr& e) override { this->record_error(e); }
  void set_values(std::size_t first, std::size_t count, const std::byte* bytes) override {
    if constexpr (std::is_trivially_copyable_v<R>) {
      if (count) std::memcpy(out_.data() + first, bytes, count * sizeof(R));
    } else {
      TypedJob<R>::set_values(first, count, bytes);
    }
  }
  [[nodiscard]] R* destination(std::size_t first) noexcept override {
    return workers_write_ && first < out_.size() ? out_.data() + first : nullptr;
  }
  // As ListJob::results_at.
  [[nodiscard]] R* results_at(std::size_t first) noexcept { return out_.data() + first; }

  [[nodiscard]] std::size_t chunks() const noexcept override { return chunks_.load(std::memory_order_acquire); }
  void add_chunks(std::size_t n) noexcept { chunks_.fetch_add(n, std::memory_order_acq_rel); }
  [[nodiscard]] std::size_t size() const noexcept { return out_.size(); }

 private:
  void run_callbacks() override {}

  std::span<R> out_;
  const bool workers_write_;
  std::atomic<std::size_t> chunks_{0};  // submitted so far (add_chunks)
};

// Results handed out as they come (imap: in input order; imap_unordered: in completion order).
// The consumer announces items as it submits them, so the total grows as input is pulled.
template <class R>
class StreamJob final : public TypedJob<R> {
 public:
  // Never completes as a whole: its items are taken one by one.
  StreamJob(JobHost* host, bool ordered) : TypedJob<R>(host, SIZE_MAX), ordered_(ordered) {}

  // Announces count more items, numbered on from the last; returns the first one's index.
  std::size_t expect(std::size_t count) {
    std::lock_guard lock(mu_);
    std::size_t first = expected_;
    expected_ += count;
    if (ordered_) results_.resize(expected_ - taken_);
    return first;
  }
  [[nodiscard]] std::size_t chunks() const noexcept override { return chunks_.load(std::memory_order_acquire); }
  [[nodiscard]] bool wants_each_result() const noexcept override { return true; }  // its reader takes each as it comes
  void add_chunks(std::size_t n) noexcept { chunks_.fetch_add(n, std::memory_order_acq_rel); }
  // The input ended: no item is announced after those so far (the meter's total).
  void end_input() {
    std::size_t total = 0;
    {
      std::lock_guard lock(mu_);
      total = expected_;
    }
    if (meter_) report_total(*meter_, total);
  }
  // Counts its items on meter from now on (Progress); call once, before the first expect().
  // Counted as each result arrives, before the consumer can take it: the last count is reported
  // before the loop can see its last result.
  void watch(std::shared_ptr<ProgressMeter> meter) { meter_ = std::move(meter); }
  [[nodiscard]] bool ordered() const noexcept { return ordered_; }
  // Items announced and not yet taken.
  [[nodiscard]] std::size_t outstanding() {
    std::lock_guard lock(mu_);
    return expected_ - taken_;
  }
  void set_value(std::size_t index, R&& value) override {
    put(index, Outcome(std::in_place_index<0>, std::move(value)));
  }
  void set_error(std::size_t index, const std::exception_ptr& e) override {
    put(index, Outcome(std::in_place_index<1>, e));
  }

  // The next result, or its exception rethrown; nullopt when every announced item was taken.
  // Throws TimeoutError when none is ready by the deadline.
  std::optional<R> next(const Deadline& deadline);

  // A waiter is satisfied when a result can be taken, or when none can ever come.
  [[nodiscard]] bool satisfied() noexcept override {
    std::lock_guard lock(mu_);
    return has_next() || taken_ == expected_;
  }
  bool wait_plain(const Deadline& deadline) override;

 private:
  using Outcome = std::variant<R, std::exception_ptr>;

  void put(std::size_t index, Outcome&& outcome) {
    std::lock_guard lock(mu_);
    if (ordered_)
      results_[index - taken_] = std::move(outcome);
    else
      ready_.push_back(std::move(outcome));
    if (meter_) report_progress(*meter_, ++arrived_);
    cv_.notify_all();
  }
  // Never completes: its results are taken one by one.
  [[nodiscard]] bool completes_whole() const noexcept override { return false; }
  bool has_next() const {  // under mu_
    return ordered_ ? (!results_.empty() && results_.front().has_value()) : !ready_.empty();
  }
  void run_callbacks() override {}

  const bool ordered_;
  std::shared_ptr<ProgressMeter> meter_;  // set once by watch(), before the input is read
  std::size_t arrived_ = 0;               // results put, for meter_; guarded by mu_
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t expected_ = 0;                    // guarded by mu_
  std::size_t taken_ = 0;                       // guarded by mu_
  std::deque<std::optional<Outcome>> results_;  // ordered: items taken_.. expected_; guarded by mu_
  std::deque<Outcome> ready_;                   // unordered: arrived, not taken; guarded by mu_
  std::atomic<std::size_t> chunks_{0};          // submitted so far (add_chunks)
};

// --- definitions -----------------------------------------------------------------------------

template <class R>
std::optional<R> StreamJob<R>::next(const Deadline& deadline) {
  for (;;) {
    std::unique_lock lock(mu_);
    if (has_next()) {
      Outcome outcome = ordered_ ? std::move(*results_.front()) : std::move(ready_.front());
      if (ordered_)
        results_.pop_front();
      else
        ready_.pop_front();
      ++taken_;
      lock.unlock();
      if (outcome.index() == 1) std::rethrow_exception(std::get<1>(outcome));
      return std::move(std::get<0>(outcome));
    }
    if (taken_ == expected_) return std::nullopt;
    lock.unlock();
    if (!this->wait(deadline)) throw TimeoutError("mproc: the next result was not ready in time");
  }
}

template <class R>
bool StreamJob<R>::wait_plain(const Deadline& deadline) {
  const std::uint64_t interrupts = interrupts_at_start();
  std::unique_lock lock(mu_);
  while (!(has_next() || taken_ == expected_)) {
    auto until = Clock::now() + kInterruptCheck;
    if (deadline && *deadline < until) until = *deadline;
    cv_.wait_until(lock, until);
    if (has_next() || taken_ == expected_) break;
    if (deadline && Clock::now() >= *deadline) return false;
    throw_if_interrupted(interrupts);
  }
  return true;
}

}  // namespace mproc::detail
