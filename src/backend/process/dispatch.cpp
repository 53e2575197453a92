#include "backend/process/dispatch.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "backoff.hpp"

namespace mproc::detail {

void Dispatcher::add(Record record) {
  pending_.push_back(std::move(record));
  book_.opened();
  dispatch();
}

bool Dispatcher::spin_worthwhile(Nanos budget) const {
  // Chunks shorter than the result thread's spin: results come often.
  const double avg_chunk_ns = book_.avg_chunk_ns();
  if (avg_chunk_ns < static_cast<double>(waits::kProcessResultThread.spin.count())) return true;
  double rounds = std::ceil(static_cast<double>(book_.outstanding()) / static_cast<double>(slots_.size()));
  return avg_chunk_ns * rounds < static_cast<double>(budget.count());
}

void Dispatcher::dispatch() {
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
    if (!best || !send(*best, pending_.front())) return;
    best->inflight.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
}

bool Dispatcher::send(Slot& slot, Record& record) {
  book_.number(record);
  if (slot.inflight.empty()) slot.progress_ns = now_ns();
  if (!slot.tasks.try_send(record.task.bytes(), {})) {
    // Too large for the free space: stream it, but only to an idle worker, which reads while
    // we write; a busy one would make us wait for its current task.
    if (!slot.inflight.empty()) return false;
    try {
      slot.tasks.send(record.task.bytes(), {}, [&slot] { return slot.dead.load(); });
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
  slot.progress_ns = now_ns();
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
  book_.ended();
  return record;
}

void Dispatcher::take_back(Slot& slot, std::uint64_t after) {
  auto first = std::find_if(slot.inflight.begin(), slot.inflight.end(), [&](const Record& r) { return r.seq > after; });
  const auto taken = std::distance(first, slot.inflight.end());
  pending_.insert(pending_.begin(), std::make_move_iterator(first), std::make_move_iterator(slot.inflight.end()));
  slot.inflight.erase(first, slot.inflight.end());
  slot.chunks_sent -= static_cast<long>(taken);
}

std::vector<Record> Dispatcher::drop(bool in_flight) {
  std::vector<Record> dropped(std::make_move_iterator(pending_.begin()), std::make_move_iterator(pending_.end()));
  pending_.clear();
  if (in_flight)
    for (auto& s : slots_) {
      for (auto& r : s->inflight) dropped.push_back(std::move(r));
      s->inflight.clear();
    }
  book_.ended(dropped.size());
  return dropped;
}

}  // namespace mproc::detail
