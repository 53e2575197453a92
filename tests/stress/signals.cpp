// SIGINT and SIGTERM to a program in the middle of a map (with no handler of its own): the
// program ends, and within 1 s nothing it started is left — no worker, no other descendant (the
// shared-memory tracker included), no /dev/shm entry. The program is this executable in mode
// signal-parent, run as a child; this process becomes a subreaper, so that the program's
// orphans are reparented here, where they can be seen through /proc and reaped.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>
#include <thread>

#include <mproc/mproc.hpp>

#include "stress.hpp"

namespace stress {
namespace {

using Clock = std::chrono::steady_clock;

int slow_identity(int x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return x;
}

struct Run {
  double exit_ms = 0;     // signal to the program's end
  double cleanup_ms = 0;  // the program's end to nothing left
  int descendants = 0;    // what it had started when signalled (workers, tracker)
  std::string ended;      // how the program ended
};

// Starts the program; its stdout is read through *out.
pid_t start_program(const Args& args, int* out) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    std::string seed = std::to_string(args.seed);
    ::execl("/proc/self/exe", "mproc_stress", "signal-parent", "--seed", seed.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  *out = fds[0];
  return pid;
}

// The name of the program's shared-memory block, read from its "mapping <name>" line, printed just
// before its map starts; empty if none within 30 s.
std::string wait_for_map(int fd) {
  std::string text;
  for (auto deadline = Clock::now() + std::chrono::seconds(30); Clock::now() < deadline;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char chunk[256];
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    text.append(chunk, static_cast<std::size_t>(n));
    auto at = text.find("mapping ");
    auto end = text.find('\n', at);
    if (at != std::string::npos && end != std::string::npos) return text.substr(at + 8, end - at - 8);
  }
  return {};
}

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) return std::string("killed by ") + ::sigabbrev_np(WTERMSIG(status));
  return "exited with " + std::to_string(WEXITSTATUS(status));
}

// What is left of the program: its descendants (ours now, as subreaper) still running, and its
// shared-memory block. Reaps what has ended.
std::vector<std::string> leftovers(const std::set<pid_t>& started, const std::string& shm) {
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  std::set<pid_t> all = started;
  for (pid_t p : descendants_of(::getpid())) all.insert(p);
  std::vector<std::string> left;
  for (pid_t p : all) {
    if (!alive(p)) continue;
    std::ifstream comm("/proc/" + std::to_string(p) + "/comm");
    std::string name;
    std::getline(comm, name);
    left.push_back("process " + std::to_string(p) + " (" + name + ")");
  }
  if (::access(("/dev/shm/" + shm).c_str(), F_OK) == 0) left.push_back("/dev/shm/" + shm);
  return left;
}

void clean_up(const std::set<pid_t>& started, const std::string& shm) {
  for (pid_t p : started) ::kill(p, SIGKILL);
  for (pid_t p : descendants_of(::getpid())) ::kill(p, SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  if (!shm.empty()) ::unlink(("/dev/shm/" + shm).c_str());
}

Run signal_run(const Args& args, int sig) {
  int out = -1;
  pid_t program = start_program(args, &out);
  std::string shm = wait_for_map(out);
  ::close(out);
  if (shm.empty()) {
    clean_up({program}, shm);
    throw Failure("the program did not start its map within 30 s");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // well into its map of 10 s
  std::set<pid_t> started = descendants_of(::getpid());
  Run run;
  run.descendants = static_cast<int>(started.size()) - 1;
  auto signalled = Clock::now();
  ::kill(program, sig);
  int status = 0;
  if (!mproc::test::reaped_within(program, std::chrono::seconds(5), &status)) {
    diagnose(program, args.gdb);
    clean_up(started, shm);
    throw Failure(std::string("the program did not end within 5 s of SIG") + ::sigabbrev_np(sig));
  }
  auto ended = Clock::now();
  run.exit_ms = std::chrono::duration<double, std::milli>(ended - signalled).count();
  run.ended = how_it_ended(status);
  for (;;) {
    auto left = leftovers(started, shm);
    run.cleanup_ms = std::chrono::duration<double, std::milli>(Clock::now() - ended).count();
    if (left.empty()) return run;
    if (run.cleanup_ms > 1000) {
      std::string list;
      for (const auto& l : left) list += (list.empty() ? "" : ", ") + l;
      clean_up(started, shm);
      throw Failure(std::string("1 s after the program ended of SIG") + ::sigabbrev_np(sig) + ", still there: " + list);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

int signal_parent(const Args&) {
  auto block = mproc::SharedMemory::create(4096);
  mproc::Pool pool(2);
  std::vector<int> in(4000);
  std::iota(in.begin(), in.end(), 0);
  std::cout << "mapping " << block.name() << std::endl;
  auto out = pool.map(slow_identity, in, 1);
  std::cout << "the map ended: " << out.size() << " results" << std::endl;
  return 3;
}

bool signals(const Args& args) {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) throw std::runtime_error("prctl(PR_SET_CHILD_SUBREAPER) failed");
  std::vector<double> exit_ms, cleanup_ms;
  std::map<std::string, int> endings;
  int runs = 0, descendants = 0;
  std::string failure;
  for (int r = 0; r < args.repeat && failure.empty() && !stop_requested(); ++r) {
    for (int sig : {SIGINT, SIGTERM}) {
      try {
        Run run = signal_run(args, sig);
        ++runs;
        exit_ms.push_back(run.exit_ms);
        cleanup_ms.push_back(run.cleanup_ms);
        ++endings[std::string("SIG") + ::sigabbrev_np(sig) + ": " + run.ended];
        descendants = std::max(descendants, run.descendants);
      } catch (const Failure& e) {
        failure = e.what();
        break;
      }
    }
  }
  std::ostringstream fig;
  fig.precision(3);
  fig << runs << "/" << 2 * args.repeat << " runs clean (";
  for (const auto& [how, n] : endings) fig << how << " x" << n << ", ";
  fig << "up to " << descendants << " descendants each); program ended " << median(exit_ms) << " ms (median), "
      << maximum(exit_ms) << " ms (max) after the signal; nothing left " << median(cleanup_ms) << " ms (median), "
      << maximum(cleanup_ms) << " ms (max) after its end (limit 1000 ms)";
  if (!failure.empty()) fig << "; failed: " << failure;
  return report(args, failure.empty(), fig.str());
}

}  // namespace stress
