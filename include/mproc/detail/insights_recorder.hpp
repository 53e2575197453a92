// insights_recorder.hpp: InsightsRecorder — a pool's record of its workers' chunks, starts and
// deaths when PoolOptions::insights is set: what pool.insights() summarises and
// pool.write_trace() writes out. call_kind names a call from its job's type. Thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "mproc/detail/invoke.hpp"
#include "mproc/detail/item_clock.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/insights.hpp"

namespace mproc::detail {

// What a call of Job is called: "apply", "map", "starmap", "imap" or "imap_unordered".
template <Style S, class Job>
const char* call_kind(const Job& job) noexcept {
  if constexpr (requires { job.ordered(); })
    return job.ordered() ? "imap" : "imap_unordered";
  else if constexpr (requires { job.size(); })
    return S == Style::star ? "starmap" : "map";
  else
    return "apply";
}

class InsightsRecorder {
 public:
  // kind: "process", "thread" or "mpi"; lanes: the workers, numbered from 0 here; first_id: the
  // first one's number in insights and traces (1 for MpiPool: its workers are ranks 1 .. n).
  InsightsRecorder(const char* kind, unsigned lanes, unsigned first_id = 0);

  // Numbers job's call at its first chunk (JobBase::call_number, from 1 in that order; 0 in
  // traces), and keeps its kind (call_kind).
  void number_call(JobBase& job, const char* kind);
  // A worker started in lane (a replacement: counts a restart, and is an event).
  void started(unsigned lane, int pid, std::int64_t at_ns);
  // A chunk of items [first, first + count) of job's call (numbered by number_call) ran in lane,
  // as timing says.
  void chunk(unsigned lane, const JobBase& job, std::size_t first, std::size_t count, const ChunkTiming& timing);
  // An instant event in lane: "worker died", "time limit kill"; detail goes in its args.
  void event(unsigned lane, const char* name, std::int64_t at_ns, int pid, int signal, int exit_code);

  [[nodiscard]] Insights snapshot() const;
  // The Chrome trace event format (Perfetto, chrome://tracing); throws std::runtime_error
  // naming path when it cannot be written.
  void write_trace(const std::string& path) const;

 private:
  struct ChunkRecord {
    unsigned lane;
    std::uint32_t call;
    std::size_t first, count;
    std::int64_t start_ns, end_ns;
    int pid;
  };
  // A worker's figures and chunks, under a lock of its own: workers that report their chunks
  // themselves (ThreadPool's threads) do not wait for each other, and a chunk of one task costs
  // one uncontended lock.
  struct alignas(64) Lane {
    mutable std::mutex mu;
    int pid = 0;
    std::int64_t spawned_ns = 0;
    std::int64_t ready_ns = 0;
    std::int64_t last_end_ns = 0;
    std::int64_t startup_ns = 0;
    std::int64_t busy_ns = 0, work_ns = 0, idle_ns = 0;
    std::size_t tasks = 0, chunks = 0;
    int starts = 0;
    std::vector<ChunkRecord> records;  // for the trace
    std::size_t dropped = 0;           // chunks past the trace's limit
  };
  struct Event {
    unsigned lane;
    const char* name;
    std::int64_t at_ns;
    int pid, signal, exit_code;
  };
  // Kept for the trace, up to this many chunks (then the oldest stay, the newest are counted).
  static constexpr std::size_t kMaxChunks = std::size_t{1} << 20;

  void keep_slow(unsigned lane, std::uint32_t call, std::size_t first, const ChunkTiming& timing);

  const char* kind_;
  const unsigned first_id_;
  const std::int64_t start_ns_;
  const std::size_t max_records_;   // per lane: kMaxChunks in all
  std::vector<Lane> lanes_;         // each guarded by its own mu
  mutable std::mutex mu_;           // taken before a lane's, never after
  std::vector<const char*> calls_;  // each call's kind, by number; guarded by mu_
  std::vector<Event> events_;       // guarded by mu_
  std::vector<SlowTask> slowest_;   // slowest first; guarded by mu_
  // The time a task must beat to enter slowest_ (-1 while it has room): a chunk without such a
  // task does not take mu_.
  std::atomic<std::int64_t> slowest_floor_ns_{-1};
};

}  // namespace mproc::detail
