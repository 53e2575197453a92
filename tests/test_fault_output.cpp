// Output::lines: workers' stdout and stderr arrive whole lines at a time, each prefixed
// "[worker N] ": 4 workers writing 10000 lines each at once give 40000 intact lines, none mixed,
// none lost, the last lines of a worker that then crashes included; a very long line arrives in
// pieces, each with the prefix. The pool runs in a child whose stdout and stderr are files.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.hpp"

namespace {

struct Captured {
  std::string out, err;
  int status = 0;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs body in a child whose stdout and stderr go to files; returns what they hold.
Captured run_captured(void (*body)()) {
  char out_path[] = "/tmp/mproc_output_XXXXXX";
  char err_path[] = "/tmp/mproc_output_XXXXXX";
  int out = ::mkstemp(out_path);
  int err = ::mkstemp(err_path);
  Captured c;
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out, 1);
    ::dup2(err, 2);
    body();
    std::fflush(nullptr);
    ::_exit(0);
  }
  ::waitpid(pid, &c.status, 0);
  ::close(out);
  ::close(err);
  c.out = slurp(out_path);
  c.err = slurp(err_path);
  ::unlink(out_path);
  ::unlink(err_path);
  return c;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);) lines.push_back(line);
  return lines;
}

mproc::Barrier* g_start = nullptr;

// Writes 10000 numbered lines to stdout (every 100th to stderr too), all four writers at once;
// writer 3 then crashes.
int write_lines(int writer) {
  g_start->wait();
  const std::string pad(50, 'x');
  for (int i = 0; i < 10000; ++i) {
    std::printf("w%d line %d %s\n", writer, i, pad.c_str());
    if (i % 100 == 0) std::fprintf(stderr, "w%d err %d\n", writer, i);
  }
  if (writer == 3) std::abort();
  return writer;
}

void four_writers() {
  mproc::Barrier start(4);
  g_start = &start;
  mproc::Pool pool(mproc::PoolOptions{.processes = 4, .output = mproc::Output::lines});
  std::vector<mproc::AsyncResult<int>> rs;
  for (int w = 0; w < 4; ++w) rs.push_back(pool.apply_async(write_lines, std::tuple{w}));
  for (int w = 0; w < 3; ++w)
    if (rs[static_cast<std::size_t>(w)].get() != w) ::_exit(3);
  try {
    (void)rs[3].get();
    ::_exit(4);
  } catch (const mproc::WorkerLost&) {
  }
}

int long_line(int n) {
  std::printf("%s", std::string(static_cast<std::size_t>(n), 'y').c_str());
  std::printf("\nunended");  // no newline: flushed when the worker leaves
  std::fflush(stdout);
  return n;
}

void one_long_line() {
  mproc::Pool pool(mproc::PoolOptions{.processes = 1, .output = mproc::Output::lines});
  if (pool.apply(long_line, std::tuple{10000}) != 10000) ::_exit(3);
}

}  // namespace

// A line "[worker W] wN <kind> K<tail>" with W and N in 0..3: {W, N, K}; nullopt for any other
// line (broken, mixed, or prefixed wrong). Parsed by hand: g++ 12's <regex> trips -Werror at -O1.
std::optional<std::array<int, 3>> parse_line(const std::string& line, const std::string& kind,
                                             const std::string& tail) {
  int worker = -1, writer = -1, k = -1;
  const std::string format = "[worker %d] w%d " + kind + " %d";
  if (std::sscanf(line.c_str(), format.c_str(), &worker, &writer, &k) != 3) return std::nullopt;
  if (worker < 0 || worker > 3 || writer < 0 || writer > 3 || k < 0) return std::nullopt;
  const std::string rebuilt = "[worker " + std::to_string(worker) + "] w" + std::to_string(writer) + " " + kind + " " +
                              std::to_string(k) + tail;
  if (rebuilt != line) return std::nullopt;
  return std::array<int, 3>{worker, writer, k};
}

TEST(OutputLines, FourWorkersTenThousandLinesEachNoneMixedNoneLost) {
  Captured c = run_captured(four_writers);
  ASSERT_TRUE(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0) << c.status;
  std::map<int, std::set<int>> seen;
  std::map<int, std::set<int>> worker_of;
  auto lines = lines_of(c.out);
  for (const auto& line : lines) {
    auto parsed = parse_line(line, "line", " " + std::string(50, 'x'));
    ASSERT_TRUE(parsed) << "broken or mixed line: " << line;
    const auto [worker, writer, k] = *parsed;
    seen[writer].insert(k);
    worker_of[writer].insert(worker);
  }
  EXPECT_EQ(lines.size(), 40000U);
  for (int w = 0; w < 4; ++w) {
    EXPECT_EQ(seen[w].size(), 10000U) << "writer " << w << " lost lines";
    EXPECT_EQ(worker_of[w].size(), 1U) << "writer " << w << " under several prefixes";
  }
  auto errs = lines_of(c.err);
  EXPECT_EQ(errs.size(), 400U);
  for (const auto& line : errs) EXPECT_TRUE(parse_line(line, "err", "")) << line;
}

TEST(OutputLines, AVeryLongLineComesInPiecesEachWithThePrefix) {
  Captured c = run_captured(one_long_line);
  ASSERT_TRUE(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0) << c.status;
  auto lines = lines_of(c.out);
  ASSERT_GE(lines.size(), 4U);
  std::string joined;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    ASSERT_EQ(lines[i].rfind("[worker 0] ", 0), 0U) << lines[i];
    EXPECT_LE(lines[i].size(), 4000U + 11U);
    joined += lines[i].substr(11);
  }
  EXPECT_EQ(joined, std::string(10000, 'y'));
  EXPECT_EQ(lines.back(), "[worker 0] unended");
}

TEST(OutputLines, OnlyProcessPoolsForwardLines) {
  EXPECT_THROW(mproc::ThreadPool(mproc::PoolOptions{.processes = 1, .output = mproc::Output::lines}),
               std::invalid_argument);
}
