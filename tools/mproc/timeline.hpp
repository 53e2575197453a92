// timeline.hpp: `mproc timeline` — Trace (a Chrome trace event file, as pool.write_trace()
// writes it), parse_trace() and read_trace(), which build one and name whatever is wrong with
// the file, and render_timeline(), which draws it as an SVG chart: a lane per worker, chunks as
// bars coloured by call, idle gaps, a time axis, worker deaths as markers, a legend.
//
// Used by the `mproc` command and its tests, never by the library itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mproc::tool {

// What is wrong with a trace file: one line, naming the file and the event.
struct TraceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A complete event ("ph":"X"): a chunk run by a worker, or (cat "call", on the parent's lane) a
// call of the pool. Times are in microseconds, as in the file.
struct TraceSlice {
  double ts = 0;
  double dur = 0;
  std::int64_t call = -1;   // args.call; -1 when the event has none
  std::string name;         // "map", "starmap", ...
  std::string cat;          // "chunk", "call", or whatever another tool wrote
  std::int64_t first = -1;  // args.first, args.count, args.worker_pid: -1 when absent
  std::int64_t count = -1;
  std::int64_t worker_pid = -1;
};

// An instant event ("ph":"i"): "worker died", "worker replaced", "time limit kill", ...
struct TraceInstant {
  double ts = 0;
  std::string name;
};

// One thread of the trace: a worker (tid K+1 for worker K), or the parent (tid 0).
struct TraceLane {
  std::int64_t pid = 0;
  std::int64_t tid = 0;
  std::string label;               // its thread_name; "tid T" (or "pid P tid T") when the trace has none
  std::vector<TraceSlice> slices;  // sorted by ts
  std::vector<TraceInstant> instants;
};

struct Trace {
  std::string source;            // the file's name, for titles and messages
  std::string process_name;      // the process_name metadata ("mproc Pool(4)"); may be empty
  std::string pool;              // otherData.pool: "process", "thread", "mpi"; empty when absent
  std::string version;           // otherData.mproc_version; empty in a trace another tool wrote
  std::int64_t workers = -1;     // otherData.workers; -1 when absent
  std::vector<TraceLane> lanes;  // sorted by (pid, tid)
  double origin = 0;             // the time drawn as 0: the pool's start in an mproc trace, else the first event
  double end = 0;                // the end of the last slice or instant
};

// Builds a Trace from the text of a trace file; source names it in messages. Accepts the JSON
// object format ({"traceEvents": [...], ...}) and the bare array format; ignores event types it
// does not draw (duration begin/end, counters, flows, ...). Throws TraceError naming what is
// wrong: not JSON, no traceEvents, an event that is not an object or lacks a field it needs.
[[nodiscard]] Trace parse_trace(std::string_view text, const std::string& source);
// parse_trace() on a file's contents; also throws TraceError when the file cannot be read.
[[nodiscard]] Trace read_trace(const std::string& path);

struct TimelineOptions {
  double width = 1200;  // pixels; the height follows from the lanes and the legend
};

// What render_timeline() drew, for the command's summary line and for tests.
struct TimelineStats {
  std::size_t lanes = 0;
  std::size_t slices = 0;  // chunk and call slices in the trace
  std::size_t bars = 0;    // rectangles drawn for them: fewer when narrow ones were merged
  std::size_t instants = 0;
};

// The trace as an SVG document (see the top of timeline.cpp for its layout).
[[nodiscard]] std::string render_timeline(const Trace& trace, const TimelineOptions& options,
                                          TimelineStats* stats = nullptr);

}  // namespace mproc::tool
