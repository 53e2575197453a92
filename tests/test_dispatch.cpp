// The process pool's claim/revoke protocol (SlotShared::claim), without processes: a Dispatcher
// over one slot whose ring lies in this process, and the worker's side played here, chunk by
// chunk, with the worker's own claim_chunk. So each interleaving is forced, not hoped for.
//
// The batch tests check what the worker is told to tell the parent at once (tell_later).
//
// The defect these tests keep fixed: a revocation could lower the bound of an earlier one. The
// earlier one had taken back chunks that still waited in the worker's ring; after the later one
// (made when the flight held only the claimed chunk) the worker claimed them and ran them,
// though they had been cancelled or sent again elsewhere (CI's ASan build: 149 of 1000 tasks
// whose cancel() returned true ran; there the later revocation was the watcher's, for a stall).
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "backend/process/dispatch.hpp"
#include "backend/process/slot.hpp"
#include "backoff.hpp"

namespace mproc::detail {
namespace {

struct NoSink : ChunkSink {
  void enqueue(Record, const char*) override {}
};

// One slot, its ring in this process, and a Dispatcher feeding it up to 8 chunks ahead.
class OneSlot : public ::testing::Test {
 protected:
  static constexpr std::size_t kRingBytes = 4096;

  OneSlot()
      : book_(sink_, ChunkBook::Pace{.queue_ahead_ns = 1e6, .first_window = 8, .min_window = 1, .max_window = 8},
              "Pool") {
    slots_.push_back(std::make_unique<Slot>());
    slot().shared = &shared_;
    slot().tasks = Ring(&shared_.task_header, ring_.data(), kRingBytes, &shared_.task_bell);
    slot().alive = true;
  }

  Slot& slot() { return *slots_.front(); }

  // A one-task job's chunk, sent (or queued) at once.
  std::shared_ptr<JobBase> add() {
    auto job = std::make_shared<ValueJob<int>>(nullptr, nullptr, nullptr);
    add(job);
    return job;
  }
  // One more chunk of job.
  void add(const std::shared_ptr<JobBase>& job) {
    Record r;
    r.job = job;
    r.count = 1;
    write_task_header<int (*)(int)>(r.task);
    dispatcher_.add(std::move(r));
  }

  // The worker reads its next message and claims the chunk, as run_worker does: the chunk's seq
  // when it claimed it (it would run it), 0 when it skips it, nullopt when the ring is empty.
  std::optional<std::uint64_t> worker_next() {
    if (!slot().tasks.has_message()) return std::nullopt;
    Writer inbox;
    slot().tasks.receive(inbox, waits::kProcessWorker, nullptr);
    last_ = read_task_header(inbox.bytes());
    return claim_chunk(shared_.claim, last_.seq) ? last_.seq : 0;
  }

  // What the worker would run of what its ring still holds.
  std::vector<std::uint64_t> worker_runs_rest() {
    std::vector<std::uint64_t> ran;
    while (auto seq = worker_next())
      if (*seq) ran.push_back(*seq);
    return ran;
  }

  NoSink sink_;
  ChunkBook book_;
  PoolOptions options_;
  PoolShared pool_;
  SlotShared shared_;
  alignas(64) std::array<std::byte, kRingBytes> ring_{};
  Slots slots_;
  Dispatcher dispatcher_{pool_, slots_, book_, options_};
  TaskHeader last_;  // of the chunk worker_next() read last
};

// --- batches --------------------------------------------------------------------------------

TEST_F(OneSlot, AChunkFollowedInTheRingByOneOfItsCallIsToldLater) {
  auto job = std::make_shared<ListJob<int>>(nullptr, 3, nullptr, nullptr);
  for (int i = 0; i < 3; ++i) add(job);
  ASSERT_EQ(worker_next(), std::optional<std::uint64_t>(1));
  EXPECT_NE(last_.batch, 0u);
  EXPECT_TRUE(tell_later(slot(), pool_, last_.batch));
  ASSERT_EQ(worker_next(), std::optional<std::uint64_t>(2));
  EXPECT_TRUE(tell_later(slot(), pool_, last_.batch));
  ASSERT_EQ(worker_next(), std::optional<std::uint64_t>(3));
  EXPECT_FALSE(tell_later(slot(), pool_, last_.batch)) << "the call's last chunk here: its result wakes the parent";
}

TEST_F(OneSlot, AChunkFollowedByAnotherCallsIsToldAtOnce) {
  auto a = add();
  auto b = add();
  ASSERT_EQ(worker_next(), std::optional<std::uint64_t>(1));
  EXPECT_FALSE(tell_later(slot(), pool_, last_.batch)) << "a's completion must not wait for b's chunk";
}

TEST_F(OneSlot, ChunksWaitingForRoomHaveEveryResultToldAtOnce) {
  auto job = std::make_shared<ListJob<int>>(nullptr, 10, nullptr, nullptr);
  for (int i = 0; i < 10; ++i) add(job);  // the window is 8: two wait in the dispatcher
  ASSERT_EQ(slot().inflight.size(), 8u);
  EXPECT_EQ(pool_.backlog.load(), 1u);
  ASSERT_EQ(worker_next(), std::optional<std::uint64_t>(1));
  EXPECT_FALSE(tell_later(slot(), pool_, last_.batch)) << "the parent sends the rest as results come";
  (void)dispatcher_.complete(slot(), ResultHeader{.seq = 1});  // sends one more; one still waits
  EXPECT_EQ(pool_.backlog.load(), 1u);
  ASSERT_EQ(worker_next(), std::optional<std::uint64_t>(2));
  (void)dispatcher_.complete(slot(), ResultHeader{.seq = 2});  // sends the last
  EXPECT_EQ(pool_.backlog.load(), 0u);
  ASSERT_EQ(worker_next(), std::optional<std::uint64_t>(3));
  EXPECT_TRUE(tell_later(slot(), pool_, last_.batch));
}

TEST_F(OneSlot, AStreamsResultsAreEachToldAtOnce) {
  auto job = std::make_shared<StreamJob<int>>(nullptr, true);
  for (int i = 0; i < 2; ++i) add(job);
  ASSERT_EQ(worker_next(), std::optional<std::uint64_t>(1));
  EXPECT_EQ(last_.batch, 0u);
  EXPECT_FALSE(tell_later(slot(), pool_, last_.batch)) << "imap's reader takes each result as it comes";
}

// --- claim and revoke -----------------------------------------------------------------------

TEST_F(OneSlot, ATakenBackChunkNeverRunsAfterALaterRevocationWithLessInFlight) {
  auto c = add();
  auto d = add();
  auto e = add();
  ASSERT_EQ(slot().inflight.size(), 3u);
  ASSERT_EQ(worker_next(), std::optional<std::uint64_t>(1));  // c claimed: it runs

  // d's cancel takes d and e back (they wait in the ring still); e is sent again, as seq 4.
  EXPECT_EQ(dispatcher_.cancel(*d).size(), 1u);
  ASSERT_EQ(slot().inflight.size(), 2u);
  EXPECT_EQ(slot().inflight.back().seq, 4u);
  // e's cancel takes seq 4 back: the flight holds only c now.
  EXPECT_EQ(dispatcher_.cancel(*e).size(), 1u);
  ASSERT_EQ(slot().inflight.size(), 1u);
  // c's cancel revokes once more, with only the claimed c in flight: nothing to take.
  EXPECT_TRUE(dispatcher_.cancel(*c).empty());

  // Seqs 2, 3 (d, e) and 4 (e again) wait in the ring: the worker must skip every one.
  EXPECT_EQ(worker_runs_rest(), std::vector<std::uint64_t>{});
  // And it still claims what is sent to it afterwards.
  add();
  EXPECT_EQ(worker_runs_rest(), std::vector<std::uint64_t>{5});
}

// As the watcher revokes a stalled worker's chunks (Dispatcher::revoke), with a cancel between.
TEST_F(OneSlot, AStallRevocationAfterACancelKeepsTheCancelledChunkFromRunning) {
  auto c = add();
  auto d = add();
  ASSERT_EQ(worker_next(), std::optional<std::uint64_t>(1));
  EXPECT_EQ(dispatcher_.cancel(*d).size(), 1u);  // d (seq 2) taken back while in the ring
  ASSERT_EQ(slot().inflight.size(), 1u);
  dispatcher_.revoke(slot());  // the stall: only c, claimed, in flight
  EXPECT_EQ(worker_runs_rest(), std::vector<std::uint64_t>{});
  EXPECT_FALSE(c->cancelled());
}

// A chunk the worker claimed first is never taken back by a revocation that comes after.
TEST_F(OneSlot, AClaimedChunkStaysWithItsWorker) {
  auto c = add();
  auto d = add();
  ASSERT_EQ(worker_next(), std::optional<std::uint64_t>(1));
  ASSERT_EQ(worker_next(), std::optional<std::uint64_t>(2));
  EXPECT_TRUE(dispatcher_.cancel(*d).empty());
  EXPECT_EQ(slot().inflight.size(), 2u);
  EXPECT_TRUE(dispatcher_.cancel(*c).empty());
}

// A cancel's take of a job's chunks from the queue (one pass since a cancelled map of many
// chunks cost a deque erase each): all of them, in order, and the rest keep theirs.
TEST(TakeChunksOf, TakesAJobsChunksInOrderAndKeepsTheOthersInTheirs) {
  auto map = std::make_shared<ListJob<int>>(nullptr, 6, nullptr, nullptr);
  map->add_chunks(3);
  auto other_map = std::make_shared<ListJob<int>>(nullptr, 1, nullptr, nullptr);
  other_map->add_chunks(1);
  auto a = std::make_shared<ValueJob<int>>(nullptr, nullptr, nullptr);
  auto b = std::make_shared<ValueJob<int>>(nullptr, nullptr, nullptr);
  auto c = std::make_shared<ValueJob<int>>(nullptr, nullptr, nullptr);
  std::deque<Record> queue;
  for (auto [job, first] : std::vector<std::pair<std::shared_ptr<JobBase>, std::size_t>>{
           {a, 0}, {map, 0}, {b, 0}, {map, 2}, {other_map, 0}, {map, 4}, {c, 0}}) {
    Record r;
    r.job = job;
    r.first = first;
    queue.push_back(std::move(r));
  }
  auto jobs_of = [](const auto& records) {
    std::vector<const JobBase*> jobs;
    for (const Record& r : records) jobs.push_back(r.job.get());
    return jobs;
  };

  std::vector<Record> taken = take_chunks_of(queue, *map);
  ASSERT_EQ(taken.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(taken[i].job, map);
    EXPECT_EQ(taken[i].first, 2 * i);
  }
  EXPECT_EQ(jobs_of(queue), (std::vector<const JobBase*>{a.get(), b.get(), other_map.get(), c.get()}));

  taken = take_chunks_of(queue, *b);  // a job of one chunk, from the middle
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].job, b);
  EXPECT_EQ(jobs_of(queue), (std::vector<const JobBase*>{a.get(), other_map.get(), c.get()}));
  EXPECT_TRUE(take_chunks_of(queue, *b).empty());
}

}  // namespace
}  // namespace mproc::detail
