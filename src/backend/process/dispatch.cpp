#include "backend/process/dispatch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>

#include "backoff.hpp"

namespace mproc::detail {

void Dispatcher::add(Record record) {
  pending_.push_back(std::move(record));
  book_.opened();
  dispatch();
}

bool Dispatcher::spin_worthwhile(Nanos budget) const {
  // No chunk taken in and not ended: no result can come (a pool just started, or all done).
  if (book_.outstanding() == 0) return false;
  // Chunks shorter than the result thread's spin: results come often.
  const double avg_chunk_ns = book_.avg_chunk_ns();
  if (avg_chunk_ns < static_cast<double>(waits::kProcessResultThread.spin.count())) return true;
  double rounds = std::ceil(static_cast<double>(book_.outstanding()) / static_cast<double>(slots_.size()));
  return avg_chunk_ns * rounds < static_cast<double>(budget.count());
}

void Dispatcher::dispatch() {
  // Called after every result: most often with nothing to send, which costs no window().
  if (pending_.empty()) return note_backlog();
  const std::size_t limit = book_.window();
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
    if (!best || !send(*best, pending_.front())) break;
    best->inflight.push_back(std::move(pending_.front()));
    pending_.pop_front();
    if (!pending_.empty()) prefetch(pending_.front());
  }
  note_backlog();
}

void Dispatcher::note_backlog() noexcept {
  if (backlog_ == !pending_.empty()) return;
  backlog_ = !pending_.empty();
  pool_.backlog.store(backlog_ ? 1 : 0, std::memory_order_relaxed);
}

void Dispatcher::prefetch(const Record& record) noexcept {
  // Work queued by the hundred thousand (apply_async in a loop) is cold by the time it is sent:
  // its task frame, read to send it, and its job, written when its result comes. Fetched while
  // the chunk before it is sent and run, they cost no wait on memory later.
  __builtin_prefetch(record.task.bytes().data(), 1);
  __builtin_prefetch(record.job.get(), 1);
}

bool Dispatcher::send(Slot& slot, Record& record) {
  book_.number(record);
  set_task_batch(record.task, record.job->wants_each_result() ? 0 : reinterpret_cast<std::uintptr_t>(record.job.get()));
  // An idle worker given work counts its progress from the watcher's next look at it
  // (Watcher::stamp_progress), not from here: a round trip at a time reads no clock to send.
  if (slot.inflight.empty()) slot.progress_ns = kUnstamped;
  SpillNote note;
  const std::span<const std::byte> message = ring_message(record.task, note);
  if (!slot.tasks.try_send(message, {})) {
    // Too large for the free space: stream it, but only to an idle worker, which reads while
    // we write; a busy one would make us wait for its current task.
    if (!slot.inflight.empty()) return false;
    try {
      slot.tasks.send(message, {}, [&slot] { return slot.dead.load(); });
    } catch (const RingAbandoned&) {
      return false;  // the worker died; the watcher resets its slot and the record stays pending
    }
  }
  ++slot.chunks_sent;
  return true;
}

std::optional<Record> Dispatcher::complete(Slot& slot, const ResultHeader& header) {
  if (slot.inflight.empty() || slot.inflight.front().seq != header.seq) return std::nullopt;
  Record record = std::move(slot.inflight.front());
  slot.inflight.pop_front();
  if (!slot.inflight.empty()) prefetch(slot.inflight.front());  // the result that comes next
  record.job->note_started();
  // Progress, stamped at the watcher's next look (Watcher::stamp_progress): a result reads no clock.
  slot.progress_ns = kUnstamped;
  slot.stalled = false;
  book_.chunk_took(header.took_ns);
  dispatch();
  return record;
}

std::optional<Record> Dispatcher::take_started(Slot& slot) {
  if (slot.inflight.empty() || slot.shared->started_seq.load(std::memory_order_acquire) != slot.inflight.front().seq)
    return std::nullopt;
  Record record = std::move(slot.inflight.front());
  slot.inflight.pop_front();
  record.job->note_started();
  book_.ended();
  return record;
}

void Dispatcher::take_back(Slot& slot, std::uint64_t after) {
  auto first = std::find_if(slot.inflight.begin(), slot.inflight.end(), [&](const Record& r) { return r.seq > after; });
  const auto taken = std::distance(first, slot.inflight.end());
  pending_.insert(pending_.begin(), std::make_move_iterator(first), std::make_move_iterator(slot.inflight.end()));
  slot.inflight.erase(first, slot.inflight.end());
  slot.chunks_sent -= static_cast<long>(taken);
  note_backlog();
}

std::vector<Record> Dispatcher::drop(bool in_flight) {
  std::vector<Record> dropped(std::make_move_iterator(pending_.begin()), std::make_move_iterator(pending_.end()));
  pending_.clear();
  note_backlog();
  if (in_flight)
    for (auto& s : slots_) {
      for (auto& r : s->inflight) dropped.push_back(std::move(r));
      s->inflight.clear();
    }
  book_.ended(dropped.size());
  return dropped;
}

}  // namespace mproc::detail

namespace mproc::detail {

void Dispatcher::revoke(Slot& slot) {
  if (slot.inflight.empty()) return;
  const std::uint64_t last_sent = slot.inflight.back().seq;
  std::uint64_t old = slot.shared->claim.load(std::memory_order_acquire);
  std::uint64_t bound = 0;
  do {
    // Never below an earlier revocation's bound: chunks up to it that it took back may still wait
    // in the worker's ring (sent again elsewhere, or cancelled) when no chunk was sent since, and
    // the flight holds only the claimed one. A lower bound would let the worker claim them.
    bound = kRevoked | std::max(last_sent, old & ~kRevoked);
  } while (old != bound && !slot.shared->claim.compare_exchange_weak(old, bound, std::memory_order_acq_rel));
  // What it replaced is the last chunk the worker claimed (or the bound of an earlier revocation,
  // past which it claimed nothing): everything after it will never run there.
  take_back(slot, old & ~kRevoked);
}

std::vector<Record> Dispatcher::cancel(const JobBase& job) {
  auto of_job = [&job](const Record& r) { return r.job.get() == &job; };
  for (auto& s : slots_)
    if (s->alive && std::any_of(s->inflight.begin(), s->inflight.end(), of_job)) revoke(*s);
  std::vector<Record> taken = take_chunks_of(pending_, job);
  book_.ended(taken.size());
  dispatch();  // what was taken back with them
  return taken;
}

bool Dispatcher::running(const JobBase& job) const {
  for (auto& s : slots_) {
    const Record* started = s->alive ? started_chunk(*s) : nullptr;
    if (started && started->job.get() == &job) return true;
  }
  return false;
}

const Record* started_chunk(const Slot& slot) noexcept {
  const std::uint64_t seq = slot.shared->started_seq.load(std::memory_order_acquire);
  for (const Record& r : slot.inflight)
    if (r.seq == seq) return &r;
  return nullptr;
}

}  // namespace mproc::detail
