// timeline.cpp: read_trace() and render_timeline() (timeline.hpp).
//
// The chart, top to bottom: a title (the pool, its workers, the time the trace covers) and a
// line saying what the file held; one lane per thread of the trace, the parent ("main") first
// and then worker 0, 1, ..., each labelled on the left with its thread_name and on the right
// with the share of the time it was busy. A lane's grey background is idle time; a chunk is a
// bar over it, coloured by its call; the parent's call slices are paler bars, named when they
// are wide enough; an instant event (a worker died, was replaced, was killed at its time limit)
// is a marker and a line across its lane. Under the lanes, the time axis (µs, ms or s, as the
// span suits), and a legend: a colour per call, idle, each kind of marker. Every bar carries a
// <title>, which a browser shows as a tooltip: the call, its items, its time, the worker's pid.
#include "timeline.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "svg.hpp"

namespace mproc::tool {
namespace {

using nlohmann::json;

// --- reading ------------------------------------------------------------------------------------

// Reads the events of one trace file into lanes, checking each field it uses.
class TraceReader {
 public:
  explicit TraceReader(const std::string& source) : source_(source) {}

  void event(std::size_t index, const json& e) {
    index_ = index;
    if (!e.is_object()) fail("is not an object");
    const std::string& ph = string_field(e, "ph");
    if (ph == "M") {
      metadata(e);
    } else if (ph == "X") {
      slice(e);
    } else if (ph == "i" || ph == "I") {
      instant(e);
    }
    // Every other phase (duration begin/end, counters, flows, async, ...) is not drawn.
  }

  void other_data(const json& d) {
    if (!d.is_object()) return;
    if (auto v = d.find("mproc_version"); v != d.end() && v->is_string()) version_ = v->get<std::string>();
    if (auto p = d.find("pool"); p != d.end() && p->is_string()) pool_ = p->get<std::string>();
    if (auto w = d.find("workers"); w != d.end() && w->is_number_integer()) workers_ = w->get<std::int64_t>();
  }

  Trace finish() &&;

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw TraceError(source_ + ": event " + std::to_string(index_) + " " + what);
  }

  const std::string& string_field(const json& e, const char* key) const {
    auto it = e.find(key);
    if (it == e.end()) fail(std::string("has no \"") + key + "\"");
    if (!it->is_string()) fail(std::string("has a \"") + key + "\" that is not a string");
    return it->get_ref<const std::string&>();
  }

  double number_field(const json& e, const char* key) const {
    auto it = e.find(key);
    if (it == e.end()) fail(std::string("has no \"") + key + "\"");
    if (!it->is_number()) fail(std::string("has a \"") + key + "\" that is not a number");
    return it->get<double>();
  }

  // pid and tid: integers; a missing pid is 0 (every event of a one-process trace alike).
  std::int64_t id_field(const json& e, const char* key, bool required) const {
    auto it = e.find(key);
    if (it == e.end()) {
      if (required) fail(std::string("has no \"") + key + "\"");
      return 0;
    }
    if (!it->is_number_integer()) fail(std::string("has a \"") + key + "\" that is not an integer");
    return it->get<std::int64_t>();
  }

  // args.<key> as an integer, or -1 when args or the key is absent.
  std::int64_t optional_arg(const json& e, const char* key) const {
    auto args = e.find("args");
    if (args == e.end() || !args->is_object()) return -1;
    auto it = args->find(key);
    if (it == args->end()) return -1;
    if (!it->is_number_integer()) fail(std::string("has an args.") + key + " that is not an integer");
    return it->get<std::int64_t>();
  }

  TraceLane& lane(const json& e, bool tid_required = true) {
    std::int64_t pid = id_field(e, "pid", false);
    std::int64_t tid = id_field(e, "tid", tid_required);
    if (lanes_.empty()) first_pid_ = pid;
    one_pid_ = one_pid_ && pid == first_pid_;
    TraceLane& l = lanes_[{pid, tid}];
    l.pid = pid;
    l.tid = tid;
    return l;
  }

  void metadata(const json& e) {
    const std::string& name = string_field(e, "name");
    if (name != "thread_name" && name != "process_name") return;
    auto args = e.find("args");
    if (args == e.end() || !args->is_object()) fail("(" + name + ") has no \"args\" object");
    const std::string& label = string_field(*args, "name");
    if (name == "process_name")
      process_name_ = label;
    else
      lane(e).label = label;
  }

  void slice(const json& e) {
    TraceSlice s;
    s.ts = number_field(e, "ts");
    s.dur = number_field(e, "dur");
    if (s.dur < 0) fail("has a negative \"dur\"");
    if (auto n = e.find("name"); n != e.end() && n->is_string()) s.name = n->get<std::string>();
    if (auto c = e.find("cat"); c != e.end() && c->is_string()) s.cat = c->get<std::string>();
    s.call = optional_arg(e, "call");
    s.first = optional_arg(e, "first");
    s.count = optional_arg(e, "count");
    s.worker_pid = optional_arg(e, "worker_pid");
    note_time(s.ts, s.ts + s.dur);
    lane(e).slices.push_back(std::move(s));
  }

  void instant(const json& e) {
    TraceInstant i;
    i.ts = number_field(e, "ts");
    i.name = string_field(e, "name");
    note_time(i.ts, i.ts);
    lane(e).instants.push_back(std::move(i));
  }

  void note_time(double start, double end) {
    // JSON numbers are finite, but 1e308 plus 1e308 is not: no scale could draw it.
    if (!std::isfinite(end)) fail("ends past any time that can be drawn");
    first_ = std::min(first_, start);
    end_ = std::max(end_, end);
  }

  std::string label_for(const TraceLane& l, bool one_pid) const {
    if (!l.label.empty()) return l.label;
    if (l.tid == 0 && !version_.empty()) return "main";
    std::string tid = "tid " + std::to_string(l.tid);
    return one_pid ? tid : "pid " + std::to_string(l.pid) + " " + tid;
  }

  const std::string& source_;
  std::size_t index_ = 0;
  std::map<std::pair<std::int64_t, std::int64_t>, TraceLane> lanes_;  // by (pid, tid): the order drawn
  std::int64_t first_pid_ = 0;
  bool one_pid_ = true;  // every lane has the pid first_pid_
  std::string process_name_, version_, pool_;
  std::int64_t workers_ = -1;
  double first_ = HUGE_VAL;
  double end_ = -HUGE_VAL;
};

Trace TraceReader::finish() && {
  Trace t;
  t.source = source_;
  t.process_name = std::move(process_name_);
  t.pool = pool_;
  t.version = version_;
  t.workers = workers_;
  for (auto& [key, lane] : lanes_) {
    lane.label = label_for(lane, one_pid_);
    std::stable_sort(lane.slices.begin(), lane.slices.end(),
                     [](const TraceSlice& a, const TraceSlice& b) { return a.ts < b.ts; });
    t.lanes.push_back(std::move(lane));
  }
  if (first_ > end_) first_ = end_ = 0;  // no timed events at all
  // An mproc trace counts from the pool's start, so the wait before the first chunk shows; any
  // other trace counts from its first event (its timestamps may be since the epoch).
  t.origin = t.version.empty() ? first_ : std::min(0.0, first_);
  t.end = end_;
  return t;
}

std::string without_json_prefix(std::string what) {  // "[json.exception.parse_error.101] parse error ..."
  if (!what.empty() && what.front() == '[') {
    auto close = what.find("] ");
    if (close != std::string::npos) what.erase(0, close + 2);
  }
  return what;
}

// --- drawing: scales, formats, colours ----------------------------------------------------------

// Where time goes on the page: [origin, origin + span] microseconds onto [x0, x0 + width] pixels.
struct TimeScale {
  double origin = 0;
  double span = 1;
  double x0 = 0;
  double width = 1;
  [[nodiscard]] double x(double ts) const { return x0 + (ts - origin) / span * width; }
  [[nodiscard]] double pixels(double dur) const { return dur / span * width; }
};

// The unit a span of time reads best in: µs below a millisecond, ms below a second, s above.
struct TimeUnit {
  const char* name;
  double us;  // microseconds in one
};
TimeUnit unit_for(double span_us) {
  if (span_us < 1e3) return {"µs", 1};
  if (span_us < 1e6) return {"ms", 1e3};
  return {"s", 1e6};
}

std::string format(const char* fmt, double value, int decimals = 0) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, decimals, value);
  return buf;
}

// A duration in microseconds, in the unit that suits it: "850 µs", "12.3 ms", "1.25 s".
std::string duration(double us) {
  if (us == 0) return "0";
  TimeUnit u = unit_for(us);
  double v = us / u.us;
  int decimals = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return format("%.*f", v, decimals) + " " + u.name;
}

// Ten colours told apart easily, also by most colour-blind readers (Tableau 10).
const char* const kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
constexpr std::size_t kPaletteSize = std::size(kPalette);
const char* const kNoCallColour = "#7f7f7f";
const char* const kIdleColour = "#e8e8e8";

// The calls of a trace, in order, each with a colour (neighbouring calls always differ) and a name.
class CallColours {
 public:
  explicit CallColours(const Trace& t) {
    for (const auto& lane : t.lanes)
      for (const auto& s : lane.slices)
        if (s.call >= 0 && (names_.count(s.call) == 0 || (names_[s.call].empty() && !s.name.empty())))
          names_[s.call] = s.name;
    std::size_t i = 0;
    for (auto& [call, name] : names_) index_[call] = i++;
  }
  [[nodiscard]] std::string colour(std::int64_t call) const {
    auto it = index_.find(call);
    return it == index_.end() ? kNoCallColour : kPalette[it->second % kPaletteSize];
  }
  [[nodiscard]] const std::map<std::int64_t, std::string>& names() const { return names_; }

 private:
  std::map<std::int64_t, std::string> names_;
  std::map<std::int64_t, std::size_t> index_;
};

// How each kind of instant event is drawn.
struct MarkerStyle {
  const char* colour;
  char shape;  // 'v' a triangle pointing down, 'o' a circle, 'd' a diamond
};
MarkerStyle marker_style(const std::string& name) {
  if (name == "worker died") return {"#c62828", 'v'};
  if (name == "worker replaced") return {"#2e7d32", 'o'};
  if (name == "time limit kill") return {"#212121", 'd'};
  return {"#6a1b9a", 'v'};
}

void draw_marker(SvgWriter& svg, const MarkerStyle& m, double x, double y, std::string tooltip) {
  const std::string c = m.colour;
  auto n = SvgWriter::num;
  if (m.shape == 'o') {
    svg.open("circle", {{"cx", n(x)}, {"cy", n(y)}, {"r", "4.5"}, {"fill", c}, {"stroke", "#fff"}});
  } else {
    std::string d = m.shape == 'd' ? "M" + n(x) + " " + n(y - 6) + " L" + n(x + 5) + " " + n(y) + " L" + n(x) + " " +
                                         n(y + 6) + " L" + n(x - 5) + " " + n(y) + " Z"
                                   : "M" + n(x - 5.5) + " " + n(y - 5) + " L" + n(x + 5.5) + " " + n(y - 5) + " L" +
                                         n(x) + " " + n(y + 5) + " Z";
    svg.open("path", {{"d", d}, {"fill", c}, {"stroke", "#fff"}});
  }
  if (!tooltip.empty()) svg.leaf("title", {}, tooltip);
  svg.close();
}

// Keeps a label within max_bytes of UTF-8, cutting between characters, never inside one.
std::string truncated(const std::string& s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  std::size_t cut = max_bytes - 3;  // room for the "…" (3 bytes)
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "…";
}

// --- drawing: bars ------------------------------------------------------------------------------

// One rectangle: a slice, or several neighbouring slices too narrow to draw one by one.
struct Bar {
  double x0 = 0, x1 = 0;
  double start = 0, end = 0;  // microseconds, as in the trace
  std::size_t slices = 0;
  const TraceSlice* only = nullptr;                            // the slice, when there is one
  std::vector<std::pair<std::int64_t, double>> time_per_call;  // to colour a merged bar
  double busy = 0;                                             // the slices' total duration

  // The share of [start, end] the slices cover (chunks of one worker never overlap): a merged
  // bar is drawn that much opaque, so that idle gaps too narrow to draw still pale it.
  [[nodiscard]] double density() const { return end > start ? std::clamp(busy / (end - start), 0.0, 1.0) : 1.0; }

  [[nodiscard]] std::int64_t main_call() const {
    auto most = std::max_element(time_per_call.begin(), time_per_call.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
    return most == time_per_call.end() ? -1 : most->first;
  }
  void add(const TraceSlice& s, double sx0, double sx1) {
    if (slices == 0) {
      x0 = sx0;
      start = s.ts;
    }
    x1 = std::max(x1, sx1);
    end = std::max(end, s.ts + s.dur);
    busy += s.dur;
    only = slices++ == 0 ? &s : nullptr;
    auto it =
        std::find_if(time_per_call.begin(), time_per_call.end(), [&](const auto& p) { return p.first == s.call; });
    if (it == time_per_call.end())
      time_per_call.emplace_back(s.call, s.dur);
    else
      it->second += s.dur;
  }
};

// The bars for one lane's slices (sorted by start). Many chunks (100000 in a chart 1000 pixels
// wide) would mean as many rectangles, most of them narrower than a pixel: a browser is slow to
// draw them and the file grows to megabytes for nothing the eye can see. So a slice joins the bar
// before it when the gap between them is under a pixel and either that bar is under a pixel
// wide, or the slice is and has the same call. A lane then holds at most about two bars per
// pixel of width, whatever the number of chunks; a merged bar takes the colour of the call it
// spent most time on, and its tooltip says how many chunks it stands for.
std::vector<Bar> bars_for(const std::vector<const TraceSlice*>& slices, const TimeScale& scale) {
  std::vector<Bar> bars;
  for (const TraceSlice* s : slices) {
    double sx0 = scale.x(s->ts);
    double sx1 = sx0 + scale.pixels(s->dur);
    if (!bars.empty()) {
      Bar& b = bars.back();
      bool close = sx0 - b.x1 < 1.0;
      bool narrow = b.x1 - b.x0 < 1.0 || (sx1 - sx0 < 1.0 && b.main_call() == s->call);
      if (close && narrow) {
        b.add(*s, sx0, sx1);
        continue;
      }
    }
    bars.emplace_back().add(*s, sx0, sx1);
  }
  return bars;
}

// The length of the union of the slices' intervals: the time the lane was busy.
double busy_time(const std::vector<const TraceSlice*>& slices) {
  double busy = 0, covered_to = -HUGE_VAL;
  for (const TraceSlice* s : slices) {
    double start = std::max(s->ts, covered_to), end = s->ts + s->dur;
    if (end > start) busy += end - start;
    covered_to = std::max(covered_to, end);
  }
  return busy;
}

std::string bar_tooltip(const TraceLane& lane, const Bar& b, const CallColours& calls, double origin) {
  std::string when = duration(b.end - b.start) + " from " + duration(b.start - origin);
  if (!b.only)
    return lane.label + ": " + std::to_string(b.slices) + " slices, merged (each under a pixel wide), " + when +
           format(", busy %.*f%% of it", b.density() * 100, 0);
  const TraceSlice& s = *b.only;
  std::string text = lane.label + ": ";
  if (s.call >= 0) {
    auto name = calls.names().find(s.call);
    text += "call " + std::to_string(s.call) + (name->second.empty() ? "" : " (" + name->second + ")");
  } else {
    text += s.name.empty() ? std::string("slice") : s.name;
  }
  if (s.cat == "call") text += ", the whole call";
  if (s.first >= 0 && s.count >= 0)
    text += ", items " + std::to_string(s.first) + "–" + std::to_string(s.first + s.count - 1) + " (" +
            std::to_string(s.count) + ")";
  text += ", " + when;
  if (s.worker_pid >= 0) text += ", pid " + std::to_string(s.worker_pid);
  return text;
}

// --- drawing: the chart -------------------------------------------------------------------------

struct Layout {
  double width;
  double left = 150;   // lane labels
  double right = 100;  // busy shares
  double top = 64;     // title and summary line
  double lane_height = 22;
  double lane_gap = 8;
  double legend_column = 290;
  double legend_row = 20;

  [[nodiscard]] double plot_width() const { return width - left - right; }
  [[nodiscard]] double lane_y(std::size_t i) const { return top + static_cast<double>(i) * (lane_height + lane_gap); }
};

// A lane's slices, the parent's calls apart from the chunks, and the bars drawn for each.
struct LaneBars {
  std::vector<const TraceSlice*> calls, chunks;
  std::vector<Bar> call_bars, chunk_bars;
};

// One line of the legend: colour swatches (or a marker) and what they mean.
struct LegendItem {
  std::vector<std::string> swatches;
  std::optional<MarkerStyle> marker;
  std::string text;
  std::size_t calls = 0;  // the calls a line of calls stands for
};

constexpr std::size_t kMaxCallLines = 30;

class TimelineRenderer {
 public:
  TimelineRenderer(const Trace& t, const TimelineOptions& o) : t_(t), layout_{o.width}, calls_(t) {
    scale_.origin = t.origin;
    scale_.span = std::max(t.end - t.origin, 1.0);
    scale_.x0 = layout_.left;
    scale_.width = layout_.plot_width();
    for (const auto& lane : t.lanes) {
      LaneBars& b = bars_.emplace_back();
      for (const auto& s : lane.slices) (s.cat == "call" ? b.calls : b.chunks).push_back(&s);
      b.call_bars = bars_for(b.calls, scale_);
      b.chunk_bars = bars_for(b.chunks, scale_);
      stats_.slices += lane.slices.size();
      stats_.instants += lane.instants.size();
      stats_.bars += b.call_bars.size() + b.chunk_bars.size();
    }
    stats_.lanes = t.lanes.size();
  }

  std::string render() {
    std::vector<LegendItem> legend = legend_items();
    double axis_y = layout_.lane_y(t_.lanes.size()) - layout_.lane_gap + 6;
    double legend_y = axis_y + 58;
    std::size_t columns =
        std::max<std::size_t>(1, static_cast<std::size_t>((layout_.width - 40) / layout_.legend_column));
    std::size_t rows = (legend.size() + columns - 1) / columns;
    SvgWriter svg(layout_.width, legend_y + static_cast<double>(rows) * layout_.legend_row + 12);
    svg.leaf("rect", {{"width", "100%"}, {"height", "100%"}, {"fill", "#ffffff"}});
    heading(svg);
    svg.comment(
        "Bars narrower than a pixel are merged with their neighbours in the same lane (see bars_for in "
        "tools/mproc/timeline.cpp): the file stays small whatever the number of chunks.");
    backgrounds(svg);
    grid(svg, axis_y);
    for (std::size_t i = 0; i < t_.lanes.size(); ++i) lane(svg, t_.lanes[i], bars_[i], layout_.lane_y(i));
    axis(svg, axis_y);
    draw_legend(svg, legend, legend_y, columns);
    return svg.finish();
  }

  [[nodiscard]] const TimelineStats& stats() const { return stats_; }

 private:
  void heading(SvgWriter& svg) const {
    std::string title = t_.process_name.empty() ? "trace" : t_.process_name;
    std::vector<std::string> parts;
    if (!t_.pool.empty()) parts.push_back(t_.pool + " pool");
    if (t_.workers >= 0) parts.push_back(std::to_string(t_.workers) + (t_.workers == 1 ? " worker" : " workers"));
    parts.push_back(duration(t_.end - t_.origin) + " in all");
    for (std::size_t i = 0; i < parts.size(); ++i) title += (i == 0 ? " — " : ", ") + parts[i];
    svg.leaf("text", {{"x", "16"}, {"y", "26"}, {"font-size", "17"}, {"font-weight", "bold"}}, title);

    std::string summary = t_.source + ": " + std::to_string(stats_.slices) + " slices in " +
                          std::to_string(calls_.names().size()) + " calls on " + std::to_string(t_.lanes.size()) +
                          " lanes";
    if (stats_.instants > 0) summary += ", " + std::to_string(stats_.instants) + " worker events";
    if (!t_.version.empty()) summary += "; mproc " + t_.version;
    svg.leaf("text", {{"x", "16"}, {"y", "46"}, {"fill", "#555"}}, summary);
  }

  void backgrounds(SvgWriter& svg) const {
    svg.open("g", {{"class", "idle"}, {"fill", kIdleColour}});
    for (std::size_t i = 0; i < t_.lanes.size(); ++i)
      svg.leaf("rect", {{"x", SvgWriter::num(layout_.left)},
                        {"y", SvgWriter::num(layout_.lane_y(i))},
                        {"width", SvgWriter::num(layout_.plot_width())},
                        {"height", SvgWriter::num(layout_.lane_height)}});
    svg.close();
  }

  // The axis' tick positions in microseconds since the origin: 1, 2 or 5 times a power of ten
  // apart, about one per 100 pixels.
  [[nodiscard]] std::vector<double> ticks(double& step) const {
    double raw = scale_.span / std::max(1.0, layout_.plot_width() / 100);
    double magnitude = std::pow(10, std::floor(std::log10(raw)));
    step = magnitude * 10;
    for (double m : {1.0, 2.0, 5.0})
      if (m * magnitude >= raw) {
        step = m * magnitude;
        break;
      }
    std::vector<double> at;
    for (int k = 0; k * step <= scale_.span * (1 + 1e-9) && k <= 1000; ++k) at.push_back(k * step);
    return at;
  }

  void grid(SvgWriter& svg, double axis_y) const {
    double step = 1;
    svg.open("g", {{"class", "grid"}, {"stroke", "#ffffff"}, {"stroke-width", "1"}});
    for (double v : ticks(step)) {
      std::string x = SvgWriter::num(scale_.x(scale_.origin + v));
      svg.leaf("line", {{"x1", x}, {"x2", x}, {"y1", SvgWriter::num(layout_.top)}, {"y2", SvgWriter::num(axis_y)}});
    }
    svg.close();
  }

  void lane(SvgWriter& svg, const TraceLane& lane, const LaneBars& bars, double y) const {
    svg.open("g", {{"class", "lane"}, {"data-label", lane.label}});
    std::string label_y = SvgWriter::num(y + layout_.lane_height / 2 + 4);
    svg.open("text", {{"x", SvgWriter::num(layout_.left - 8)}, {"y", label_y}, {"text-anchor", "end"}});
    svg.leaf("title", {}, lane.label);  // the whole label, where the one shown is cut short
    svg.leaf("tspan", {}, truncated(lane.label, 22));
    svg.close();
    draw_bars(svg, lane, bars.call_bars, y, "call");
    draw_bars(svg, lane, bars.chunk_bars, y, "bar");
    // A worker's share of the time running chunks; the parent's, inside calls.
    bool in_calls = bars.chunks.empty() && !bars.calls.empty();
    double busy = busy_time(in_calls ? bars.calls : bars.chunks) / scale_.span * 100;
    svg.leaf("text", {{"x", SvgWriter::num(layout_.left + layout_.plot_width() + 8)}, {"y", label_y}, {"fill", "#555"}},
             format("%.*f%%", busy, busy < 10 ? 1 : 0) + (in_calls ? " in calls" : " busy"));
    for (const auto& i : lane.instants) {
      MarkerStyle m = marker_style(i.name);
      double x = scale_.x(i.ts);
      svg.leaf("line", {{"x1", SvgWriter::num(x)},
                        {"x2", SvgWriter::num(x)},
                        {"y1", SvgWriter::num(y)},
                        {"y2", SvgWriter::num(y + layout_.lane_height)},
                        {"stroke", m.colour},
                        {"stroke-width", "1.5"}});
      draw_marker(svg, m, x, y, lane.label + ": " + i.name + " at " + duration(i.ts - scale_.origin));
    }
    svg.close();
  }

  // Chunks fill the lane's height; the parent's call slices are paler and named inside.
  void draw_bars(SvgWriter& svg, const TraceLane& lane, const std::vector<Bar>& bars, double y,
                 const char* kind) const {
    bool call = std::strcmp(kind, "call") == 0;
    for (const Bar& b : bars) {
      double w = std::max(b.x1 - b.x0, 1.0);  // a lone sliver stays visible
      std::int64_t c = b.main_call();
      std::string cls = std::string(kind) + (b.only ? "" : " merged");
      double opacity = (call ? 0.45 : 1.0) * std::max(0.25, b.density());
      svg.open("rect", {{"class", cls},
                        {"x", SvgWriter::num(b.x0)},
                        {"y", SvgWriter::num(y + 2)},
                        {"width", SvgWriter::num(w)},
                        {"height", SvgWriter::num(layout_.lane_height - 4)},
                        {"fill", calls_.colour(c)},
                        {"fill-opacity", SvgWriter::num(opacity)}});
      svg.leaf("title", {}, bar_tooltip(lane, b, calls_, scale_.origin));
      svg.close();
      if (call && b.only && w > 40) {
        auto name = calls_.names().find(c);
        std::string text = name == calls_.names().end() ? b.only->name : name->second;
        if (static_cast<double>(text.size()) * 7 < w)
          svg.leaf("text",
                   {{"x", SvgWriter::num(b.x0 + w / 2)},
                    {"y", SvgWriter::num(y + layout_.lane_height / 2 + 4)},
                    {"text-anchor", "middle"},
                    {"fill", "#222"}},
                   text);
      }
    }
  }

  void axis(SvgWriter& svg, double y) const {
    double step = 1;
    std::vector<double> at = ticks(step);
    TimeUnit unit = unit_for(scale_.span);
    int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step / unit.us) - 1e-9)));
    std::string x0 = SvgWriter::num(layout_.left), x1 = SvgWriter::num(layout_.left + layout_.plot_width());
    svg.open("g", {{"class", "axis"}, {"fill", "#333"}});
    svg.leaf("line",
             {{"x1", x0}, {"x2", x1}, {"y1", SvgWriter::num(y)}, {"y2", SvgWriter::num(y)}, {"stroke", "#333"}});
    for (double v : at) {
      std::string x = SvgWriter::num(scale_.x(scale_.origin + v));
      svg.leaf("line",
               {{"x1", x}, {"x2", x}, {"y1", SvgWriter::num(y)}, {"y2", SvgWriter::num(y + 5)}, {"stroke", "#333"}});
      std::string label = v == 0 ? "0" : format("%.*f", v / unit.us, decimals) + " " + unit.name;
      svg.leaf("text", {{"x", x}, {"y", SvgWriter::num(y + 19)}, {"text-anchor", "middle"}}, label);
    }
    std::string what = t_.version.empty() ? "time since the first event" : "time since the pool started";
    svg.leaf("text",
             {{"x", SvgWriter::num(layout_.left + layout_.plot_width() / 2)},
              {"y", SvgWriter::num(y + 38)},
              {"text-anchor", "middle"},
              {"fill", "#555"}},
             what + " (" + unit.name + ")");
    svg.close();
  }

  // The calls (consecutive calls of one name, e.g. apply's thousands, grouped on one line, their
  // colours cycling), idle time, and each kind of instant event the trace holds.
  [[nodiscard]] std::vector<LegendItem> legend_items() const {
    std::vector<LegendItem> items = call_legend();
    bool uncalled = false;
    std::map<std::string, std::size_t> instants;
    for (const auto& lane : t_.lanes) {
      for (const auto& s : lane.slices) uncalled = uncalled || s.call < 0;
      for (const auto& i : lane.instants) ++instants[i.name];
    }
    if (uncalled) items.push_back({{kNoCallColour}, std::nullopt, "slices without a call number"});
    items.push_back({{kIdleColour}, std::nullopt, "idle (no chunk running)"});
    bool merged = std::any_of(bars_.begin(), bars_.end(), [](const LaneBars& b) {
      return std::any_of(b.chunk_bars.begin(), b.chunk_bars.end(), [](const Bar& bar) { return bar.only == nullptr; });
    });
    if (merged) items.push_back({{kPalette[0], "#a7bcd3"}, std::nullopt, "merged bars (< 1 px): paler = more idle"});
    for (const auto& [name, count] : instants)
      items.push_back({{}, marker_style(name), name + " (" + std::to_string(count) + ")"});
    return items;
  }

  // A line per call, or per run of consecutive calls of one name, at most kMaxCallLines.
  [[nodiscard]] std::vector<LegendItem> call_legend() const {
    std::vector<LegendItem> items;
    const auto& names = calls_.names();
    for (auto it = names.begin(); it != names.end();) {
      auto last = it;
      std::size_t n = 1;
      for (auto next = std::next(it); next != names.end() && next->second == it->second; ++next, ++n) last = next;
      LegendItem item;
      item.calls = n;
      for (auto c = it; item.swatches.size() < std::min<std::size_t>(n, 4); ++c)
        item.swatches.push_back(calls_.colour(c->first));
      std::string name = it->second.empty() ? "" : ": " + it->second;
      item.text = n == 1 ? "call " + std::to_string(it->first) + name
                         : "calls " + std::to_string(it->first) + "–" + std::to_string(last->first) + name + " (" +
                               std::to_string(n) + ")";
      items.push_back(std::move(item));
      it = std::next(last);
    }
    if (items.size() > kMaxCallLines) {  // calls of many names taking turns: the legend must end somewhere
      std::size_t hidden = 0;
      for (auto i = items.begin() + kMaxCallLines - 1; i != items.end(); ++i) hidden += i->calls;
      items.resize(kMaxCallLines - 1);
      items.push_back(
          {{}, std::nullopt, "… and " + std::to_string(hidden) + " more calls (see their tooltips)", hidden});
    }
    return items;
  }

  void draw_legend(SvgWriter& svg, const std::vector<LegendItem>& items, double y0, std::size_t columns) const {
    svg.open("g", {{"class", "legend"}});
    for (std::size_t i = 0; i < items.size(); ++i) {
      double x = 16 + static_cast<double>(i % columns) * layout_.legend_column;
      double y = y0 + static_cast<double>(i / columns) * layout_.legend_row;
      const LegendItem& item = items[i];
      double text_x = x + 22;
      if (item.marker) {
        draw_marker(svg, *item.marker, x + 7, y - 4, "");
      } else {
        double w = 14.0 / static_cast<double>(std::max<std::size_t>(1, item.swatches.size()));
        for (std::size_t k = 0; k < item.swatches.size(); ++k)
          svg.leaf("rect", {{"x", SvgWriter::num(x + static_cast<double>(k) * w)},
                            {"y", SvgWriter::num(y - 11)},
                            {"width", SvgWriter::num(w)},
                            {"height", "14"},
                            {"fill", item.swatches[k]},
                            {"stroke", item.swatches[k] == kIdleColour ? "#bbb" : "none"}});
      }
      svg.leaf("text", {{"x", SvgWriter::num(text_x)}, {"y", SvgWriter::num(y)}}, truncated(item.text, 44));
    }
    svg.close();
  }

  const Trace& t_;
  Layout layout_;
  CallColours calls_;
  TimeScale scale_;
  TimelineStats stats_;
  std::vector<LaneBars> bars_;  // one per lane of t_
};

}  // namespace

Trace parse_trace(std::string_view text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    throw TraceError(source + ": not JSON: " + without_json_prefix(e.what()));
  }
  TraceReader reader(source);
  const json* events = &doc;  // the bare array format
  if (doc.is_object()) {
    auto it = doc.find("traceEvents");
    if (it == doc.end()) throw TraceError(source + ": no \"traceEvents\" (is this a Chrome trace?)");
    events = &*it;
    if (auto other = doc.find("otherData"); other != doc.end()) reader.other_data(*other);
  }
  if (!events->is_array())
    throw TraceError(source + (doc.is_object() ? ": \"traceEvents\" is not an array"
                                               : ": neither a trace object nor an array of events"));
  for (std::size_t i = 0; i < events->size(); ++i) reader.event(i, (*events)[i]);
  return std::move(reader).finish();
}

Trace read_trace(const std::string& path) {
  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, Closer> f(std::fopen(path.c_str(), "rb"));
  if (!f) throw TraceError("cannot read " + path + ": " + std::strerror(errno));
  std::string text;
  char buf[1 << 16];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f.get())) > 0;) text.append(buf, n);
  if (std::ferror(f.get())) throw TraceError("cannot read " + path + ": " + std::strerror(errno));
  return parse_trace(text, path);
}

std::string render_timeline(const Trace& trace, const TimelineOptions& options, TimelineStats* stats) {
  if (!(options.width >= 400 && options.width <= 20000))
    throw std::invalid_argument("timeline width must be within [400, 20000] pixels");
  TimelineRenderer r(trace, options);
  std::string svg = r.render();
  if (stats) *stats = r.stats();
  return svg;
}

}  // namespace mproc::tool
