// A scenario's run in a forked child, watched from a parent that has no pool and no thread: a
// run that hangs is seen, diagnosed and killed, and the scenario goes on or reports it, instead
// of the whole tier waiting for its outer timeout. The child reports through a pipe, one line
// per report: "P <phase>", "F <name> <value>", "X <failure>".
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "stress.hpp"

namespace stress {
namespace {

int g_channel = -1;  // in the child: the pipe to the watching parent
volatile sig_atomic_t g_stop = 0;

bool leaks_found() {
#if defined(__SANITIZE_ADDRESS__)
  return __lsan_do_recoverable_leak_check() != 0;  // 0 when ASAN_OPTIONS has detect_leaks=0
#else
  return false;
#endif
}

void send(const std::string& line) {
  if (g_channel < 0) return;
  std::string msg = line;
  for (char& c : msg)
    if (c == '\n') c = ' ';
  msg += '\n';
  // One write per report, under PIPE_BUF: reports from several threads do not interleave.
  if (::write(g_channel, msg.data(), msg.size()) < 0) return;
}

[[noreturn]] void run_child(const std::function<void()>& body, int channel) {
  g_channel = channel;
  int rc = 0;
  try {
    body();
    // The child ends with _exit, where LeakSanitizer would not look: it looks here.
    if (leaks_found()) throw Failure("LeakSanitizer found leaks (its report is above)");
  } catch (const std::exception& e) {
    send(std::string("X ") + e.what());
    rc = 1;
  }
  std::cout.flush();
  std::cerr.flush();
  ::_exit(rc);
}

void parse(std::string& buffer, Outcome& out) {
  std::size_t end;
  while ((end = buffer.find('\n')) != std::string::npos) {
    std::string line = buffer.substr(0, end);
    buffer.erase(0, end + 1);
    if (line.size() < 2) continue;
    std::string text = line.substr(2);
    if (line[0] == 'P') {
      out.last_phase = text;
    } else if (line[0] == 'X') {
      out.message = text;
    } else if (line[0] == 'F') {
      auto space = text.rfind(' ');
      out.values[text.substr(0, space)] = std::strtod(text.c_str() + space + 1, nullptr);
    }
  }
}

void drain(int fd, std::string& buffer) {
  char chunk[4096];
  ssize_t n;
  while ((n = ::read(fd, chunk, sizeof chunk)) > 0) buffer.append(chunk, static_cast<std::size_t>(n));
}

double children_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_CHILDREN, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status))
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + ::strsignal(WTERMSIG(status)) + ")";
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

// Waits for the child to end or the deadline, reading its reports; true if it ended.
bool watch(pid_t pid, int fd, std::chrono::steady_clock::time_point deadline, Outcome& out, int& status) {
  std::string buffer;
  for (;;) {
    // The workers the child forks hold the pipe too: the child's end is its exit, not EOF.
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      drain(fd, buffer);
      parse(buffer, out);
      return true;
    }
    if (g_stop || std::chrono::steady_clock::now() > deadline) {
      drain(fd, buffer);
      parse(buffer, out);
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) > 0) drain(fd, buffer);
    parse(buffer, out);
  }
}

}  // namespace

void stop_on_signals() {
  struct sigaction action {};
  action.sa_handler = [](int) { g_stop = 1; };
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGINT, &action, nullptr);
}

bool stop_requested() { return g_stop != 0; }

double Outcome::value(const std::string& name) const {
  auto it = values.find(name);
  return it == values.end() ? 0 : it->second;
}

void phase(std::string_view what) { send("P " + std::string(what)); }

void figure(std::string_view name, double value) {
  std::ostringstream line;
  line.precision(12);
  line << "F " << name << " " << value;
  send(line.str());
}

Outcome run_isolated(const std::function<void()>& body, std::chrono::seconds deadline, bool gdb) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  auto start = std::chrono::steady_clock::now();
  std::cout.flush();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::close(fds[0]);
    run_child(body, fds[1]);
  }
  ::close(fds[1]);
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  Outcome out;
  int status = 0;
  double cpu_before = children_cpu_seconds();
  bool ended = watch(pid, fds[0], start + deadline, out, status);
  if (g_stop) {
    out.kind = Outcome::stopped;
    out.message = "stopped by a signal (the hard timeout?) in phase: " + out.last_phase;
  } else if (!ended) {
    out.kind = Outcome::hung;
    out.message = "no end after " + std::to_string(deadline.count()) + " s, in phase: " + out.last_phase +
                  (all_asleep(pid) ? " (every thread asleep: stuck)" : " (threads still running: maybe only slow)");
    std::cout << "HANG: " << out.message << "\n";
    diagnose(pid, gdb);
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    out.kind = Outcome::passed;
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 1 && !out.message.empty()) {
    out.kind = Outcome::failed;
  } else {
    out.kind = Outcome::crashed;
    out.message = how_it_ended(status) + " in phase: " + out.last_phase;
  }
  if (!ended) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ::close(fds[0]);
  out.seconds = seconds_since(start);
  out.cpu_seconds = children_cpu_seconds() - cpu_before;
  return out;
}

std::string rerun_command(const Args& args) {
  std::ostringstream cmd;
  for (const char* var : {"ASAN_OPTIONS", "UBSAN_OPTIONS"})
    if (const char* value = std::getenv(var)) cmd << var << "=" << value << " ";
  cmd << args.exe << " " << args.mode << " --seed " << args.seed << " --repeat " << args.repeat;
  if (args.count) cmd << " --count " << args.count;
  if (args.warmup) cmd << " --warmup " << args.warmup;
  if (args.deadline_s) cmd << " --deadline " << args.deadline_s;
  if (args.mode == "memory") cmd << " --limit-mb " << args.limit_mb;
  if (args.mode == "soak") cmd << " --max-hangs " << args.max_hangs;
  return cmd.str();
}

bool run_scenario(const Args& args, const std::function<void()>& body, int default_deadline_s,
                  const std::function<std::string(const Outcome&)>& figures) {
  std::chrono::seconds deadline(args.deadline_s ? args.deadline_s : default_deadline_s);
  Outcome out;
  int runs = 0;
  while (runs < args.repeat && (runs == 0 || out.kind == Outcome::passed) && !stop_requested()) {
    out = run_isolated(body, deadline, args.gdb);
    ++runs;
  }
  // A run that did not finish its body has no figures worth printing, only how it ended.
  bool finished = out.kind == Outcome::passed || out.kind == Outcome::failed;
  std::string line = finished ? figures(out) : "no figures";
  std::ostringstream cpu;
  cpu.precision(3);
  cpu << "; " << out.seconds << " s, CPU " << out.cpu_seconds << " s";
  line += cpu.str();
  if (args.repeat > 1) line += "; run " + std::to_string(runs) + " of " + std::to_string(args.repeat);
  const char* kind[] = {"", "failed: ", "HUNG: ", "CRASHED: ", ""};
  if (out.kind != Outcome::passed) line += "; " + std::string(kind[out.kind]) + out.message;
  return report(args, out.kind == Outcome::passed, line);
}

bool report(const Args& args, bool passed, const std::string& figures) {
  std::cout << (passed ? "PASS " : "FAIL ") << args.mode << ": " << figures << "\n";
  if (!passed) std::cout << "  seed " << args.seed << "; rerun alone: " << rerun_command(args) << "\n";
  std::cout.flush();
  return passed;
}

}  // namespace stress
