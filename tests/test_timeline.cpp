// test_timeline.cpp: tools/mproc/timeline and svg — `mproc timeline`'s reading of a trace (every
// malformed one a TraceError naming the file, the event and the field), the chart it draws (a
// lane per thread, a bar per chunk, markers, legend, axis units), bars merged when many chunks
// are narrower than a pixel, and SvgWriter's escaping. Well-formedness is also checked by an XML
// parser in the timeline_svg_check ctest (tools/mproc/CMakeLists.txt).
#include "timeline.hpp"

#include <cstddef>
#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "svg.hpp"

namespace mproc::tool {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::size_t occurrences(std::string_view text, std::string_view what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string_view::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// The message parse_trace throws for text, or "" when it throws nothing.
std::string error_of(const std::string& text) {
  try {
    (void)parse_trace(text, "t.json");
  } catch (const TraceError& e) {
    return e.what();
  }
  return "";
}

std::string events(const std::string& list) {
  return R"({"traceEvents":[)" + list + R"(],"otherData":{"mproc_version":"1.0.0","pool":"thread","workers":2}})";
}

std::string chunk(int tid, double ts, double dur, int call, const char* name = "map") {
  return R"({"ph":"X","cat":"chunk","name":")" + std::string(name) + R"(","pid":1,"tid":)" + std::to_string(tid) +
         R"(,"ts":)" + std::to_string(ts) + R"(,"dur":)" + std::to_string(dur) + R"(,"args":{"call":)" +
         std::to_string(call) + R"(,"first":0,"count":10,"worker_pid":77}})";
}

TEST(Timeline, ReadsTheFixtureIntoLanesByThread) {
  Trace t = read_trace(MPROC_TIMELINE_FIXTURE);
  EXPECT_EQ(t.process_name, "mproc Pool(2)");
  EXPECT_EQ(t.pool, "process");
  EXPECT_EQ(t.workers, 2);
  EXPECT_EQ(t.version, "0.9.0");
  ASSERT_EQ(t.lanes.size(), 3u);
  EXPECT_EQ(t.lanes[0].label, "main");  // tid 0, without a thread_name, in an mproc trace
  EXPECT_EQ(t.lanes[1].label, "worker 0");
  EXPECT_EQ(t.lanes[2].label, "worker 1");
  EXPECT_EQ(t.lanes[0].slices.size(), 2u);
  EXPECT_EQ(t.lanes[1].slices.size(), 5u);
  EXPECT_EQ(t.lanes[2].slices.size(), 5u);
  ASSERT_EQ(t.lanes[2].instants.size(), 3u);
  EXPECT_EQ(t.lanes[2].instants[0].name, "worker died");
  const TraceSlice& s = t.lanes[1].slices[1];
  EXPECT_EQ(s.call, 1);
  EXPECT_EQ(s.first, 500);
  EXPECT_EQ(s.count, 250);
  EXPECT_EQ(s.worker_pid, 4101);
  EXPECT_EQ(t.origin, 0);  // the pool's start, not the first event (ts 80)
  EXPECT_EQ(t.end, 6000);
}

TEST(Timeline, DrawsALanePerThreadAndABarPerChunk) {
  TimelineStats stats;
  std::string svg = render_timeline(read_trace(MPROC_TIMELINE_FIXTURE), {}, &stats);
  EXPECT_EQ(stats.lanes, 3u);
  EXPECT_EQ(stats.slices, 12u);
  EXPECT_EQ(stats.bars, 12u);  // nothing merged at this size
  EXPECT_EQ(stats.instants, 3u);
  EXPECT_EQ(occurrences(svg, R"(<g class="lane")"), 3u);
  EXPECT_EQ(occurrences(svg, R"(<rect class="bar")"), 10u);
  EXPECT_EQ(occurrences(svg, R"(<rect class="call")"), 2u);
  EXPECT_THAT(svg, HasSubstr(R"(data-label="worker 1")"));
  EXPECT_THAT(svg, HasSubstr(">call 1: map<"));
  EXPECT_THAT(svg, HasSubstr(">call 2: starmap<"));
  EXPECT_THAT(svg, HasSubstr(">worker died (1)<"));
  EXPECT_THAT(svg, HasSubstr(">worker replaced (1)<"));
  EXPECT_THAT(svg, HasSubstr(">time limit kill (1)<"));
  EXPECT_THAT(svg, HasSubstr(">mproc Pool(2) — process pool, 2 workers, 6.00 ms in all<"));
  EXPECT_THAT(svg, HasSubstr(">6 ms<"));  // the last tick: the span is 6 ms
  EXPECT_THAT(svg, HasSubstr("items 500–749 (250)"));
  EXPECT_EQ(svg.rfind("</svg>\n"), svg.size() - 7);
}

TEST(Timeline, ChoosesTheAxisUnitFromTheSpan) {
  std::string us = render_timeline(parse_trace(events(chunk(1, 0, 480, 1)), "t"), {});
  EXPECT_THAT(us, HasSubstr(" µs<"));
  EXPECT_THAT(us, Not(HasSubstr(" ms<")));
  std::string s = render_timeline(parse_trace(events(chunk(1, 0, 4.5e6, 1)), "t"), {});
  EXPECT_THAT(s, HasSubstr(">4.0 s<"));
  EXPECT_THAT(s, HasSubstr("(s)<"));
}

TEST(Timeline, LabelsLanesByThreadWithoutMetadataAndCountsFromTheFirstEvent) {
  // Another tool's trace: no metadata, no otherData, timestamps since the epoch.
  std::string text = R"({"traceEvents":[{"ph":"X","name":"a","pid":5,"tid":9,"ts":1700000000000000,"dur":10},
                        {"ph":"X","name":"b","pid":5,"tid":3,"ts":1700000000000020,"dur":5}]})";
  Trace t = parse_trace(text, "other.json");
  ASSERT_EQ(t.lanes.size(), 2u);
  EXPECT_EQ(t.lanes[0].label, "tid 3");
  EXPECT_EQ(t.lanes[1].label, "tid 9");
  EXPECT_EQ(t.origin, 1700000000000000.0);
  std::string svg = render_timeline(t, {});
  EXPECT_THAT(svg, HasSubstr("— 25.0 µs in all<"));
  EXPECT_THAT(svg, HasSubstr(">slices without a call number<"));
}

TEST(Timeline, AcceptsTheArrayFormatAndIgnoresEventsItDoesNotDraw) {
  std::string text = R"([{"ph":"B","name":"x","pid":1,"tid":1,"ts":0},{"ph":"E","pid":1,"tid":1,"ts":5},
                         {"ph":"C","name":"depth","pid":1,"ts":1,"args":{"n":3}},{"ph":"s","id":1,"ts":2},
                         {"ph":"M","name":"thread_sort_index","pid":1,"tid":1,"args":{"sort_index":1}},)" +
                     chunk(1, 0, 10, 0) + "]";
  Trace t = parse_trace(text, "t");
  ASSERT_EQ(t.lanes.size(), 1u);
  EXPECT_EQ(t.lanes[0].slices.size(), 1u);
}

TEST(Timeline, KeepsAnIdleWorkerWithAThreadName) {
  std::string meta = R"({"ph":"M","name":"thread_name","pid":1,"tid":2,"args":{"name":"worker 1"}},)";
  TimelineStats stats;
  std::string svg = render_timeline(parse_trace(events(meta + chunk(1, 0, 100, 0)), "t"), {}, &stats);
  EXPECT_EQ(stats.lanes, 2u);
  EXPECT_THAT(svg, HasSubstr(">0.0% busy<"));
}

TEST(Timeline, NamesWhatIsWrongWithABadTrace) {
  EXPECT_THAT(error_of("not json"), HasSubstr("t.json: not JSON: parse error at line 1"));
  EXPECT_THAT(error_of(""), HasSubstr("t.json: not JSON"));
  EXPECT_EQ(error_of(R"({"events":[]})"), R"(t.json: no "traceEvents" (is this a Chrome trace?))");
  EXPECT_EQ(error_of(R"({"traceEvents":{}})"), R"(t.json: "traceEvents" is not an array)");
  EXPECT_EQ(error_of("42"), "t.json: neither a trace object nor an array of events");
  EXPECT_EQ(error_of(events("[1]")), "t.json: event 0 is not an object");
  EXPECT_EQ(error_of(events(R"({"name":"x"})")), R"(t.json: event 0 has no "ph")");
  EXPECT_EQ(error_of(events(chunk(1, 0, 5, 0) + R"(,{"ph":"X","pid":1,"tid":1,"ts":3})")),
            R"(t.json: event 1 has no "dur")");
  EXPECT_EQ(error_of(events(R"({"ph":"X","pid":1,"tid":1,"ts":"3","dur":1})")),
            R"(t.json: event 0 has a "ts" that is not a number)");
  EXPECT_EQ(error_of(events(R"({"ph":"X","pid":1,"tid":1,"ts":3,"dur":-1})")),
            R"(t.json: event 0 has a negative "dur")");
  EXPECT_EQ(error_of(events(R"({"ph":"X","pid":1,"ts":3,"dur":1})")), R"(t.json: event 0 has no "tid")");
  EXPECT_EQ(error_of(events(R"({"ph":"X","pid":1,"tid":1.5,"ts":3,"dur":1})")),
            R"(t.json: event 0 has a "tid" that is not an integer)");
  EXPECT_EQ(error_of(events(R"({"ph":"X","pid":1,"tid":1,"ts":3,"dur":1,"args":{"call":"two"}})")),
            "t.json: event 0 has an args.call that is not an integer");
  EXPECT_EQ(error_of(events(R"({"ph":"i","pid":1,"tid":1,"ts":3})")), R"(t.json: event 0 has no "name")");
  EXPECT_EQ(error_of(events(R"({"ph":"X","pid":1,"tid":1,"ts":1e308,"dur":1e308})")),
            "t.json: event 0 ends past any time that can be drawn");
  EXPECT_EQ(error_of(events(R"({"ph":"M","name":"thread_name","pid":1,"tid":1})")),
            R"(t.json: event 0 (thread_name) has no "args" object)");
  try {
    (void)read_trace("/nonexistent/trace.json");
    ADD_FAILURE() << "no TraceError";
  } catch (const TraceError& e) {
    EXPECT_STREQ(e.what(), "cannot read /nonexistent/trace.json: No such file or directory");
  }
}

TEST(Timeline, EscapesNamesFromTheTrace) {
  std::string meta = R"({"ph":"M","name":"thread_name","pid":1,"tid":1,"args":{"name":"<w> & \"q\" 'a'\u0001"}},)";
  std::string svg = render_timeline(parse_trace(events(meta + chunk(1, 0, 100, 0, "m<a>p")), "a&b.json"), {});
  EXPECT_THAT(svg, HasSubstr("&lt;w&gt; &amp; &quot;q&quot; &apos;a&apos;?"));
  EXPECT_THAT(svg, HasSubstr("call 0: m&lt;a&gt;p"));
  EXPECT_THAT(svg, HasSubstr("a&amp;b.json"));
  EXPECT_THAT(svg, Not(HasSubstr("<w>")));
  EXPECT_THAT(svg, Not(HasSubstr("\x01")));
}

TEST(Timeline, CutsLongLabelsBetweenCharactersNotInsideOne) {
  std::string name;
  for (int i = 0; i < 30; ++i) name += "é";  // two bytes each
  std::string meta = R"({"ph":"M","name":"thread_name","pid":1,"tid":1,"args":{"name":")" + name + R"("}},)";
  std::string svg = render_timeline(parse_trace(events(meta + chunk(1, 0, 100, 0)), "t"), {});
  EXPECT_THAT(svg, HasSubstr("<tspan>ééééééééé…</tspan>"));  // 18 bytes, then the ellipsis: 21 of 22
  EXPECT_THAT(svg, HasSubstr("<title>" + name + "</title>"));
}

// 100000 chunks on 2 workers, 10 µs each: bars narrower than a pixel are merged, so the chart
// has at most about two bars per pixel per lane and stays well under a megabyte.
TEST(Timeline, MergesBarsNarrowerThanAPixel) {
  std::string list;
  for (int i = 0; i < 100000; ++i) {
    if (i) list += ",";
    list += chunk(1 + i % 2, (i / 2) * 10.0 + (i % 2), 9, i / 50000);
  }
  Trace t = parse_trace(events(list), "big.json");
  TimelineStats stats;
  TimelineOptions options;
  std::string svg = render_timeline(t, options, &stats);
  EXPECT_EQ(stats.slices, 100000u);
  EXPECT_LE(stats.bars, 2 * 2 * static_cast<std::size_t>(options.width));
  EXPECT_GE(stats.bars, 2u);
  EXPECT_LT(svg.size(), 1000u * 1000u);
  EXPECT_THAT(svg, HasSubstr(R"(class="bar merged")"));
  EXPECT_THAT(svg, HasSubstr("slices, merged (each under a pixel wide)"));
  EXPECT_THAT(svg, HasSubstr(">calls 0–1: map (2)<"));
  EXPECT_EQ(occurrences(svg, ">90% busy<"), 2u);  // 9 µs of every 10, merged bars or not
}

TEST(Timeline, GroupsRunsOfSameNamedCallsInTheLegend) {
  std::string list;
  for (int call = 0; call < 300; ++call) list += (call ? "," : "") + chunk(1, call * 10.0, 5, call, "apply");
  list += "," + chunk(2, 3000, 10, 300, "map");
  std::string svg = render_timeline(parse_trace(events(list), "t"), {});
  EXPECT_THAT(svg, HasSubstr(">calls 0–299: apply (300)<"));
  EXPECT_THAT(svg, HasSubstr(">call 300: map<"));
}

TEST(Timeline, EndsALegendOfManyCallsWithACount) {
  std::string list;
  for (int call = 0; call < 40; ++call)
    list += (call ? "," : "") + chunk(1, call * 10.0, 5, call, call % 2 ? "b" : "a");
  std::string svg = render_timeline(parse_trace(events(list), "t"), {});
  EXPECT_THAT(svg, HasSubstr(">call 28: a<"));
  EXPECT_THAT(svg, Not(HasSubstr(">call 29: b<")));
  EXPECT_THAT(svg, HasSubstr(">… and 11 more calls (see their tooltips)<"));
}

TEST(Timeline, RefusesAWidthOutsideItsRange) {
  Trace t = parse_trace(events(chunk(1, 0, 5, 0)), "t");
  EXPECT_THROW((void)render_timeline(t, {.width = 100}), std::invalid_argument);
}

TEST(SvgWriter, EscapesAndNests) {
  EXPECT_EQ(SvgWriter::escape("a<b>&\"'\t\x02"), "a&lt;b&gt;&amp;&quot;&apos;\t?");
  EXPECT_EQ(SvgWriter::num(12), "12");
  EXPECT_EQ(SvgWriter::num(12.5), "12.5");
  EXPECT_EQ(SvgWriter::num(0.254), "0.25");
  EXPECT_EQ(SvgWriter::num(-0.001), "0");
  SvgWriter svg(100, 50);
  svg.open("g", {{"class", "x"}});
  svg.leaf("text", {{"x", "1"}}, "a<b");
  svg.comment("no -- here");
  std::string doc = svg.finish();  // closes the g and the svg
  EXPECT_THAT(doc, HasSubstr(R"(<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50")"));
  EXPECT_THAT(doc, HasSubstr("<text x=\"1\">a&lt;b</text>"));
  EXPECT_THAT(doc, HasSubstr("<!-- no - - here -->"));
  EXPECT_THAT(doc, HasSubstr("  </g>\n</svg>\n"));
}

}  // namespace
}  // namespace mproc::tool
