// dispatch.hpp: Dispatcher — a process pool's chunks on their way: those waiting for a worker
// and those in flight on one. It picks the worker for the next chunk, feeds each worker as far
// ahead of its work as the pool's ChunkBook allows (its window), has the book number the chunks,
// and matches results to them. Every call is made under PoolState::mu.
//
// Chunks of one call queued on one worker form a batch (TaskHeader::batch): the worker tells the
// parent of a result only when the next chunk in its ring is not of the same call, or chunks wait
// here for room in a window (PoolShared::backlog). A map of 8 chunks on 2 workers then wakes the
// parent twice, not 8 times: each wake-up takes a CPU from a worker for a while.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "backend/process/slot.hpp"
#include "mproc/detail/chunk_book.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/pool_options.hpp"

namespace mproc::detail {

class Dispatcher {
 public:
  Dispatcher(PoolShared& pool, const Slots& slots, ChunkBook& book, const PoolOptions& options)
      : pool_(pool), slots_(slots), book_(book), options_(options) {}

  // Queues a chunk (its time limit set) and sends what can be sent.
  void add(Record record);
  // Sends queued chunks to the workers that may take more.
  void dispatch();
  // The chunk a result from slot is for, out of its flight, or nullopt when there is none
  // (terminate() dropped it). Counts the result as the slot's progress.
  std::optional<Record> complete(Slot& slot, const ResultHeader& header);
  // The chunk slot's worker had started when it died, out of its flight.
  std::optional<Record> take_started(Slot& slot);
  // Puts the chunks in flight on slot after chunk number after back at the head of the queue,
  // in order, for other workers.
  void take_back(Slot& slot, std::uint64_t after);
  // Empties the queue (with in_flight, the flights too) and returns what it held.
  std::vector<Record> drop(bool in_flight);
  // Takes back the chunks sent to slot that its worker has not claimed (SlotShared::claim): they
  // will never run there, and wait at the head of the queue, in order, for a worker.
  void revoke(Slot& slot);
  // A future's cancel: takes back job's chunks that no worker claimed, out of the flights and the
  // queue, and returns them (their items are the caller's to fail); sends on the others.
  std::vector<Record> cancel(const JobBase& job);
  // Whether a worker runs a chunk of job now.
  [[nodiscard]] bool running(const JobBase& job) const;

  [[nodiscard]] bool queue_empty() const noexcept { return pending_.empty(); }
  // Whether a wait is better spent spinning than asleep: when chunks are short, so results come
  // often, or when all the work in hand should be done within budget_ns (from the chunks'
  // average run time). Otherwise a waiter sleeps, and leaves the cores to the workers. Reads only
  // ChunkBook's estimates and the number of slots: any thread, without the lock.
  [[nodiscard]] bool spin_worthwhile(Nanos budget) const;

 private:
  bool send(Slot& slot, Record& record);
  static void prefetch(const Record& record) noexcept;  // a chunk about to be sent, or whose result comes next
  void note_backlog() noexcept;                         // PoolShared::backlog, after pending_ changed

  PoolShared& pool_;
  const Slots& slots_;
  ChunkBook& book_;
  const PoolOptions& options_;
  std::deque<Record> pending_;
  bool backlog_ = false;  // what PoolShared::backlog says
};

}  // namespace mproc::detail
