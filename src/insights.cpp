// Insights and traces: see mproc/insights.hpp and mproc/detail/insights_recorder.hpp.
#include "mproc/insights.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "mproc/detail/insights_recorder.hpp"
#include "mproc/mproc.hpp"

namespace mproc {
namespace detail {
namespace {

constexpr std::size_t kSlowestKept = ItemClock::kSlowest;

// Microseconds, as the trace format counts them, from a now_ns() stamp.
double trace_us(std::int64_t ns, std::int64_t start_ns) { return static_cast<double>(ns - start_ns) / 1000.0; }

}  // namespace

void take_item_times(ChunkTiming& timing, ItemClock& clock) {
  const double scale = clock.ns_per_tick(timing.end_ns, item_ticks());
  auto ns = [scale](std::uint64_t ticks) { return static_cast<std::int64_t>(static_cast<double>(ticks) * scale); };
  timing.work_ns = std::min(ns(clock.work_ticks), timing.end_ns - timing.start_ns);
  timing.slow_count = clock.slow_count;
  for (std::uint32_t i = 0; i < clock.slow_count; ++i)
    timing.slow[i] = {clock.slow[i].offset, 0, ns(clock.slow[i].ticks)};
}

InsightsRecorder::InsightsRecorder(const char* kind, unsigned lanes, unsigned first_id)
    : kind_(kind),
      first_id_(first_id),
      start_ns_(now_ns()),
      max_records_(kMaxChunks / std::max(1u, lanes)),
      lanes_(lanes) {
  (void)tick_origin();  // before the workers fork: they inherit it (see ns_per_tick)
}

void InsightsRecorder::number_call(JobBase& job, const char* kind) {
  if (job.call_number() != 0) return;  // every chunk after its first
  std::lock_guard lock(mu_);
  if (job.call_number() == 0) {
    calls_.push_back(kind);
    job.set_call_number(static_cast<std::uint32_t>(calls_.size()));
  }
}

void InsightsRecorder::started(unsigned lane, int pid, std::int64_t at_ns) {
  Lane& l = lanes_.at(lane);
  bool replaced = false;
  {
    std::lock_guard lock(l.mu);
    replaced = l.starts++ > 0;
    l.pid = pid;
    l.spawned_ns = at_ns;
    l.ready_ns = 0;
  }
  if (replaced) event(lane, "worker replaced", at_ns, pid, 0, 0);
}

void InsightsRecorder::chunk(unsigned lane, const JobBase& job, std::size_t first, std::size_t count,
                             const ChunkTiming& timing) {
  const std::uint32_t call = job.call_number() - 1;  // given by number_call() when the chunk came in
  Lane& l = lanes_.at(lane);
  {
    std::lock_guard lock(l.mu);
    if (!l.ready_ns && timing.ready_ns) {
      l.ready_ns = timing.ready_ns;
      if (l.spawned_ns) l.startup_ns = std::max<std::int64_t>(0, timing.ready_ns - l.spawned_ns);
    }
    l.pid = timing.pid;
    l.busy_ns += timing.end_ns - timing.start_ns;
    l.work_ns += timing.work_ns;
    l.idle_ns += timing.idle_ns;
    l.last_end_ns = timing.end_ns;
    l.tasks += count;
    ++l.chunks;
    if (l.records.size() < max_records_)
      l.records.push_back({lane, call, first, count, timing.start_ns, timing.end_ns, timing.pid});
    else
      ++l.dropped;
  }
  // slow[] is slowest first: the chunk has a task for slowest_ only if its first beats the floor.
  if (timing.slow_count > 0 && timing.slow[0].ns > slowest_floor_ns_.load(std::memory_order_relaxed)) {
    std::lock_guard lock(mu_);
    keep_slow(lane, call, first, timing);
  }
}

void InsightsRecorder::keep_slow(unsigned lane, std::uint32_t call, std::size_t first, const ChunkTiming& timing) {
  for (std::uint32_t i = 0; i < timing.slow_count; ++i) {
    const auto took = std::chrono::nanoseconds(timing.slow[i].ns);
    if (slowest_.size() == kSlowestKept && slowest_.back().took >= took) break;  // slow[] is slowest first
    SlowTask t{call, call < calls_.size() ? calls_[call] : "?", first + timing.slow[i].offset, took, first_id_ + lane};
    auto at = std::find_if(slowest_.begin(), slowest_.end(), [&](const SlowTask& s) { return s.took < took; });
    slowest_.insert(at, std::move(t));
    if (slowest_.size() > kSlowestKept) slowest_.pop_back();
  }
  if (slowest_.size() == kSlowestKept) slowest_floor_ns_.store(slowest_.back().took.count(), std::memory_order_relaxed);
}

void InsightsRecorder::event(unsigned lane, const char* name, std::int64_t at_ns, int pid, int signal, int exit_code) {
  std::lock_guard lock(mu_);
  events_.push_back({lane, name, at_ns, pid, signal, exit_code});
}

Insights InsightsRecorder::snapshot() const {
  std::lock_guard lock(mu_);
  const std::int64_t now = now_ns();
  Insights out;
  out.pool = kind_;
  out.wall = std::chrono::nanoseconds(now - start_ns_);
  for (unsigned i = 0; i < lanes_.size(); ++i) {
    const Lane& l = lanes_[i];
    std::lock_guard lane_lock(l.mu);
    WorkerInsights w;
    w.worker = first_id_ + i;
    w.pid = l.pid;
    w.tasks = l.tasks;
    w.chunks = l.chunks;
    w.busy = std::chrono::nanoseconds(l.busy_ns);
    w.working = std::chrono::nanoseconds(l.work_ns);
    w.codec = std::chrono::nanoseconds(std::max<std::int64_t>(0, l.busy_ns - l.work_ns));
    // Waiting since its last chunk (or since it was ready, or started) counts too.
    const std::int64_t since = l.last_end_ns ? l.last_end_ns : (l.ready_ns ? l.ready_ns : l.spawned_ns);
    w.idle = std::chrono::nanoseconds(l.idle_ns + (since ? std::max<std::int64_t>(0, now - since) : 0));
    w.startup = std::chrono::nanoseconds(l.startup_ns);
    w.restarts = std::max(0, l.starts - 1);
    out.workers.push_back(w);
  }
  out.slowest = slowest_;
  return out;
}

void InsightsRecorder::write_trace(const std::string& path) const {
  using nlohmann::json;
  json events = json::array();
  const unsigned workers = static_cast<unsigned>(lanes_.size());
  events.push_back({{"ph", "M"},
                    {"name", "process_name"},
                    {"pid", 1},
                    {"tid", 0},
                    {"args", {{"name", "mproc Pool(" + std::to_string(workers) + ")"}}}});
  events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", 1}, {"tid", 0}, {"args", {{"name", "main"}}}});
  for (unsigned k = first_id_; k < first_id_ + workers; ++k)
    events.push_back({{"ph", "M"},
                      {"name", "thread_name"},
                      {"pid", 1},
                      {"tid", k + 1},
                      {"args", {{"name", "worker " + std::to_string(k)}}}});
  std::lock_guard lock(mu_);
  // Every lane's chunks, in the order they started.
  std::vector<ChunkRecord> chunks;
  std::size_t dropped = 0;
  for (const Lane& l : lanes_) {
    std::lock_guard lane_lock(l.mu);
    chunks.insert(chunks.end(), l.records.begin(), l.records.end());
    dropped += l.dropped;
  }
  std::stable_sort(chunks.begin(), chunks.end(),
                   [](const ChunkRecord& a, const ChunkRecord& b) { return a.start_ns < b.start_ns; });
  // Each call as a slice on the main lane: from its first chunk's start to its last one's end.
  std::vector<std::pair<std::int64_t, std::int64_t>> spans(calls_.size(), {INT64_MAX, INT64_MIN});
  for (const ChunkRecord& c : chunks) {
    events.push_back({{"ph", "X"},
                      {"cat", "chunk"},
                      {"name", c.call < calls_.size() ? calls_[c.call] : "?"},
                      {"pid", 1},
                      {"tid", first_id_ + c.lane + 1},
                      {"ts", trace_us(c.start_ns, start_ns_)},
                      {"dur", static_cast<double>(c.end_ns - c.start_ns) / 1000.0},
                      {"args", {{"call", c.call}, {"first", c.first}, {"count", c.count}, {"worker_pid", c.pid}}}});
    if (c.call < spans.size()) {
      spans[c.call].first = std::min(spans[c.call].first, c.start_ns);
      spans[c.call].second = std::max(spans[c.call].second, c.end_ns);
    }
  }
  for (std::size_t i = 0; i < spans.size(); ++i) {
    if (spans[i].first > spans[i].second) continue;
    events.push_back({{"ph", "X"},
                      {"cat", "call"},
                      {"name", calls_[i]},
                      {"pid", 1},
                      {"tid", 0},
                      {"ts", trace_us(spans[i].first, start_ns_)},
                      {"dur", static_cast<double>(spans[i].second - spans[i].first) / 1000.0},
                      {"args", {{"call", i}}}});
  }
  for (const Event& e : events_) {
    json args = {{"worker_pid", e.pid}};
    if (e.signal) args["signal"] = e.signal;
    if (e.exit_code) args["exit_code"] = e.exit_code;
    events.push_back({{"ph", "i"},
                      {"s", "t"},
                      {"cat", "worker"},
                      {"name", e.name},
                      {"pid", 1},
                      {"tid", first_id_ + e.lane + 1},
                      {"ts", trace_us(e.at_ns, start_ns_)},
                      {"args", std::move(args)}});
  }
  json trace = {{"traceEvents", std::move(events)},
                {"displayTimeUnit", "ms"},
                {"otherData",
                 {{"mproc_version", version()}, {"pool", kind_}, {"workers", workers}, {"chunks_not_kept", dropped}}}};
  std::ofstream file(path, std::ios::trunc);
  if (!file) throw std::runtime_error("mproc: write_trace: cannot open " + path + " for writing");
  file << trace.dump() << '\n';
  if (!file.flush()) throw std::runtime_error("mproc: write_trace: cannot write " + path);
}

}  // namespace detail

namespace {

std::string ms_text(std::chrono::nanoseconds ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ns.count()) / 1e6);
  return buf;
}

}  // namespace

std::ostream& operator<<(std::ostream& out, const Insights& s) {
  std::ostringstream t;
  t << "mproc insights: " << s.pool << " pool, " << s.workers.size() << " workers, " << ms_text(s.wall)
    << " ms since it started\n";
  t << std::setw(6) << "worker" << std::setw(9) << "pid" << std::setw(10) << "tasks" << std::setw(8) << "chunks"
    << std::setw(12) << "busy ms" << std::setw(12) << "working ms" << std::setw(10) << "codec ms" << std::setw(12)
    << "idle ms" << std::setw(12) << "startup ms" << std::setw(9) << "restarts" << '\n';
  for (const WorkerInsights& w : s.workers)
    t << std::setw(6) << w.worker << std::setw(9) << w.pid << std::setw(10) << w.tasks << std::setw(8) << w.chunks
      << std::setw(12) << ms_text(w.busy) << std::setw(12) << ms_text(w.working) << std::setw(10) << ms_text(w.codec)
      << std::setw(12) << ms_text(w.idle) << std::setw(12) << ms_text(w.startup) << std::setw(9) << w.restarts << '\n';
  if (!s.slowest.empty()) {
    t << "slowest tasks:\n"
      << std::setw(6) << "call" << std::setw(16) << "kind" << std::setw(10) << "index" << std::setw(12) << "ms"
      << std::setw(8) << "worker" << '\n';
    for (const SlowTask& task : s.slowest)
      t << std::setw(6) << task.call << std::setw(16) << task.kind << std::setw(10) << task.index << std::setw(12)
        << ms_text(task.took) << std::setw(8) << task.worker << '\n';
  }
  return out << t.str();
}

}  // namespace mproc
