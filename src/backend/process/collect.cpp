// The protocol that decides which thread collects results: see collect.hpp.
#include "backend/process/collect.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <stdexcept>
#include <string>

#include "backoff.hpp"
#include "heap/heap.hpp"
#include "os/os.hpp"

namespace mproc::detail {
namespace {

// True on the thread that holds the collecting role, while it holds it.
thread_local bool t_collecting = false;
// True on a pool's result thread: the collector of last resort, which must never sleep waiting
// for someone else to collect.
thread_local bool t_result_thread = false;

}  // namespace

// A result frame the worker wrote into the heap, once its note is read: the parent's from then
// on, freed when read (back to the heap's cache of warm blocks for the worker's next frame).
class Collector::TakenBlock {
 public:
  TakenBlock(Slot& slot, const std::optional<SpillNote>& note) {
    if (!note) return;
    block_ = const_cast<std::byte*>(note->at);  // NOLINT: the heap's memory, its to free
    void* expected = block_;
    // Taken: the watcher will not free it too, should the worker die now.
    slot.shared->result_block.compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel);
  }
  TakenBlock(TakenBlock&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  TakenBlock& operator=(TakenBlock&&) = delete;
  ~TakenBlock() { heap::deallocate(block_); }

 private:
  std::byte* block_ = nullptr;
};

// A result frame in the heap, read by the thread that waits for its job (HandedWork).
class Collector::HandedRead final : public HandedWork {
 public:
  HandedRead(Collector& collector, TakenBlock block, const Reader& rest, const Record& record)
      : collector_(collector),
        block_(std::move(block)),
        rest_(rest),
        read_(record.read),
        job_(*record.job),
        first_(record.first),
        count_(record.count) {}

  void run() noexcept override {
    read_(job_, first_, count_, rest_);
    TakenBlock done(std::move(block_));  // freed now: a warm block for the worker's next frame
  }
  void release() noexcept override { collector_.handed_read_released(); }

 private:
  Collector& collector_;
  TakenBlock block_;
  Reader rest_;  // the frame after its header
  ResultReader read_;
  JobBase& job_;  // once handed over, it owns this
  std::size_t first_;
  std::size_t count_;
};

void (*result_read_hook)() noexcept = nullptr;

bool Collector::any_results() const noexcept {
  for (const auto& s : slots_)
    if (!s->dead.load(std::memory_order_relaxed) && s->results.has_message()) return true;
  return false;
}

bool Collector::drain() {
  bool any = false;
  for (auto& s : slots_)
    if (!s->dead.load(std::memory_order_relaxed)) any |= drain_slot(*s);
  return any;
}

bool Collector::drain_slot(Slot& slot) {
  bool any = false;
  while (!watcher_waits() && slot.results.has_message()) {
    try {
      slot.results.receive(slot.inbox, waits::kProcessMessage, [&slot] { return slot.dead.load(); });
    } catch (const RingAbandoned&) {
      break;  // the worker died mid-message; the watcher takes it from here
    }
    handle_message(slot);
    if (result_read_hook) result_read_hook();
    any = true;
  }
  return any;
}

void Collector::handle_message(Slot& slot) {
  const std::optional<SpillNote> note = read_spill_note(slot.inbox.bytes());
  TakenBlock taken(slot, note);
  Reader r(note ? note->frame() : slot.inbox.bytes());
  const ResultHeader header = read_result_header(r);
  if (header.seq == kControlSeq) {  // a worker's hello
    host_.on_hello(read_hello(r));
    return;
  }
  ChunkTiming timing;
  if (timed_) timing = read_chunk_timing(r);
  std::optional<Record> record = host_.on_result(slot, header);
  if (!record) return;
  // Before the results: a caller whose job they complete may look at the insights at once.
  if (timed_) host_.on_chunk_timing(slot, *record, timing);
  if (note)
    read_frame_in_heap(std::move(taken), r, *record);
  else
    record->read(*record->job, record->first, record->count, r);
  host_.on_results_read(std::move(*record));
}

void Collector::read_frame_in_heap(TakenBlock block, const Reader& rest, const Record& record) {
  std::unique_ptr<HandedWork> work = std::make_unique<HandedRead>(*this, std::move(block), rest, record);
  bool may_hand = false;
  {
    std::lock_guard lock(handed_mu_);
    may_hand = !handing_closed_;
    if (may_hand) ++handed_;
  }
  // record holds the job meanwhile: a waiter that takes the work may complete it at once.
  if (may_hand && record.job->hand_to_waiter(work)) return;
  work->run();
  if (may_hand) work->release();
}

void Collector::handed_read_released() noexcept {
  std::lock_guard lock(handed_mu_);
  // Under the lock: once close_handing() sees none, nothing here is touched again.
  if (--handed_ == 0) handed_cv_.notify_all();
}

void Collector::close_handing() noexcept {
  std::unique_lock lock(handed_mu_);
  handed_cv_.wait(lock, [this] { return handed_ == 0; });
  handing_closed_ = true;
}

void Collector::drain_dead(Slot& slot) {
  watcher_wants_.store(1);  // see collect.hpp: asked, the holder hands the role over
  std::lock_guard role(role_mu_);
  watcher_wants_.store(0);
  os::futex_wake(watcher_wants_, INT_MAX, false);
  t_collecting = true;
  drain_slot(slot);
  host_.settle();
  t_collecting = false;
}

void Collector::receive_hello(Slot& slot) {
  // Until its hello, a worker that dies can only have died starting up.
  try {
    slot.results.receive(slot.inbox, waits::kProcessMessage, [&slot] { return slot.dead.load(); });
  } catch (const RingAbandoned&) {
    throw std::runtime_error("mproc: worker " + std::to_string(slot.pid) + " exited while starting");
  }
  handle_message(slot);
}

void Collector::release_role() noexcept {
  // The result thread may be asleep: from now on a worker with a result must wake it.
  pool_.doorbell.arm();
  host_.settle();
  t_collecting = false;
  role_mu_.unlock();
  if (any_results() || has_deferred_.load()) wake();
}

bool Collector::wait(JobBase& job, const Deadline& deadline) {
  if (t_collecting)
    throw std::logic_error(
        "mproc: a callback cannot wait for a result of its own pool: it runs on the thread that collects them");
  if (t_result_thread) return collect_until(job, deadline);  // a callback waiting on its pool
  // Whoever waits collects: with the result thread asleep, a synchronous call involves just
  // this thread and one worker, with no wake-up in between.
  // A SIGINT while this thread collects counts too: outside a blocking call's InterruptScope,
  // wait_plain would count only from its own start.
  const std::uint64_t interrupts = interrupts_at_start();
  if (!watcher_waits() && host_.spin_worthwhile(waits::kProcessCaller.spin) && role_mu_.try_lock()) {
    t_collecting = true;
    pool_.doorbell.disarm();
    // Results for other jobs may keep coming: the deadline and the watcher end the collecting too.
    for (Backoff backoff(waits::kProcessCaller, deadline);
         !job.satisfied() && !watcher_waits() && interrupt_count() == interrupts;)
      if (drain() ? deadline && Clock::now() >= *deadline : !backoff.pause()) break;
    release_role();
    if (job.satisfied()) return true;
    throw_if_interrupted(interrupts);
  }
  return job.wait_working(deadline);  // a big result for it is handed to this thread to read
}

bool Collector::collect_until(JobBase& job, const Deadline& deadline) {
  std::unique_lock role(role_mu_);  // others hold it only briefly: they hand it back
  t_collecting = true;
  while (!job.satisfied()) {
    if (watcher_waits()) yield_to_watcher(role);
    if (drain()) continue;
    Nanos slice = waits::kProcessCaller.sleep;
    if (const OptNanos left = time_left(deadline)) {
      if (*left == Nanos::zero()) break;
      slice = std::min(slice, *left);
    }
    pool_.doorbell.arm();
    if (any_results()) {
      pool_.doorbell.disarm();
      continue;
    }
    host_.settle();
    t_collecting = false;
    role.unlock();
    pool_.doorbell.sleep(slice);
    role.lock();
    t_collecting = true;
  }
  host_.settle();
  t_collecting = false;
  return job.satisfied();
}

void Collector::yield_to_watcher(std::unique_lock<std::mutex>& role) {
  host_.settle();
  t_collecting = false;
  role.unlock();
  // Until the watcher has the role: retaken at once, the mutex would go to this thread again.
  while (watcher_wants_.load() != 0) os::futex_wait(watcher_wants_, 1, waits::kProcessCaller.sleep, false);
  role.lock();
  t_collecting = true;
}

void Collector::defer_completion(std::shared_ptr<JobBase> job) {
  {
    std::lock_guard lock(deferred_mu_);
    deferred_.push_back(std::move(job));
    has_deferred_.store(true);
  }
  if (!t_collecting) wake();  // a collector hands over on release_role()
}

void Collector::run_deferred() {
  std::deque<std::shared_ptr<JobBase>> jobs;
  {
    std::lock_guard lock(deferred_mu_);
    jobs.swap(deferred_);
    has_deferred_.store(false);
  }
  for (auto& job : jobs) job->complete();
}

void Collector::wake() noexcept {
  pool_.doorbell.word.store(0, std::memory_order_seq_cst);
  os::futex_wake(pool_.doorbell.word, INT_MAX, true);
}

void Collector::stop() noexcept {
  stop_.store(true);
  wake();
}

void Collector::run() {
  t_on_pool_thread = true;
  t_result_thread = true;
  std::unique_lock role(role_mu_);
  t_collecting = true;
  Backoff idle(waits::kProcessResultThread);
  bool spin = false;  // whether the next result is expected soon: not before any work came
  for (;;) {
    if (watcher_waits()) yield_to_watcher(role);
    if (has_deferred_.load()) {
      // Callbacks run without the role, so that one may wait on the pool like any caller.
      host_.settle();
      t_collecting = false;
      role.unlock();
      run_deferred();
      role.lock();
      t_collecting = true;
      spin = host_.spin_worthwhile(waits::kProcessResultThread.spin);  // a callback may have sent work
    }
    if (drain()) {
      idle.restart();
      spin = host_.spin_worthwhile(waits::kProcessResultThread.spin);
      continue;
    }
    if (stop_.load() && !has_deferred_.load()) break;
    if (spin && idle.pause()) continue;
    pool_.doorbell.arm();
    if (any_results() || has_deferred_.load() || stop_.load()) {
      pool_.doorbell.disarm();
      continue;
    }
    host_.settle();
    t_collecting = false;
    role.unlock();
    heap::release_idle();  // free heap blocks left idle go back to the kernel, for every process
    pool_.doorbell.sleep(waits::kProcessResultThread.sleep);  // bounded: a safety net, not the wake-up path
    role.lock();
    t_collecting = true;
    idle.restart();
  }
  host_.settle();
  t_collecting = false;
  role.unlock();
  close_handing();
}

}  // namespace mproc::detail
