// stress.hpp: the stress tier's common parts —
//   Args        a scenario's command line (mode, seed, sizes, deadline)
//   Failure     what a scenario throws when it measured something wrong
//   Scenario    a mode of mproc_stress: runs, prints one line of figures, says whether it passed
//   Outcome     how one isolated run ended (passed, failed, hung, crashed) and what it reported
//   run_isolated, phase, figure   a run in a forked child under a deadline, and its reports
//   /proc probes: fds, threads, children, descendants, resident size, /dev/shm
// The scenarios and how to run them: README.md, "Stress tier".
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "processes.hpp"

namespace stress {

struct Args {
  std::string exe;   // argv[0], for the rerun command
  std::string mode;  // the scenario
  std::uint64_t seed = 1;
  int repeat = 1;        // runs of the scenario (the soak: 100)
  long count = 0;        // the scenario's size (tasks, pools, replacements); 0: its default
  long warmup = 0;       // tasks before the memory scenario's first reading; 0: its default
  double limit_mb = 20;  // the memory scenario's allowed growth
  int deadline_s = 0;    // one run longer than this is a hang; 0: the scenario's default
  int max_hangs = 2;     // the soak stops after this many hangs (each costs a deadline)
  bool gdb = true;       // on a hang, print the hung process's threads' stacks (gdb)
};

// The command that reruns this scenario alone with these arguments (sanitizer settings included).
std::string rerun_command(const Args& args);

// A wrong measurement: the scenario fails with this message.
class Failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Each scenario prints one line of figures and returns whether it passed.
using Scenario = bool (*)(const Args&);
bool soak(const Args& args);
bool pools(const Args& args);
bool memory(const Args& args);
bool threads(const Args& args);
bool replace(const Args& args);
bool signals(const Args& args);
// The program the signals scenario interrupts (run as `mproc_stress signal-parent`).
int signal_parent(const Args& args);

// --- isolated runs: a forked child under a deadline -------------------------------------------

struct Outcome {
  enum Kind { passed, failed, hung, crashed, stopped } kind = passed;  // stopped: by stop_requested()
  std::string message;                                                 // a failure's message, or how the child ended
  std::string last_phase;                // the child's last phase() before it ended or hung
  std::map<std::string, double> values;  // the child's figure()s
  double seconds = 0;                    // how long the run took
  double cpu_seconds = 0;                // the CPU time it took, its workers' included
  [[nodiscard]] double value(const std::string& name) const;
};

// Runs body in a forked child (this process must have no other thread) and waits at most
// deadline. A hang is diagnosed (threads, their wait channels, gdb stacks when asked), then
// the child is killed; its workers end with it.
Outcome run_isolated(const std::function<void()>& body, std::chrono::seconds deadline, bool gdb);
// Makes SIGTERM and SIGINT (the runner's hard timeout, a Ctrl-C) stop the run being watched, so
// that the scenario can still print what it measured before it ends.
void stop_on_signals();
[[nodiscard]] bool stop_requested();
// From inside body: what it is about to do (named if it hangs there), and a measured figure.
void phase(std::string_view what);
void figure(std::string_view name, double value);

// A scenario of one isolated run (repeated args.repeat times, up to the first that does not
// pass): prints figures(outcome) of the last run, and a failure's message. Returns whether all
// passed.
bool run_scenario(const Args& args, const std::function<void()>& body, int default_deadline_s,
                  const std::function<std::string(const Outcome&)>& figures);

// Prints a scenario's line of figures, PASS or FAIL first; a failure adds the seed and the
// rerun command. Returns passed.
bool report(const Args& args, bool passed, const std::string& figures);

// --- /proc probes -------------------------------------------------------------------------------

using mproc::test::children_of;  // and open_fds, thread_count, shm_entries: processes.hpp
using mproc::test::open_fds;
using mproc::test::shm_entries;
using mproc::test::thread_count;
std::set<pid_t> descendants_of(pid_t pid);  // children, their children, ...
long resident_kb(pid_t pid);                // VmRSS of /proc/<pid>/status; -1 when gone
bool alive(pid_t pid);                      // exists and is not a zombie
// Whether every thread of pid and of its descendants sleeps (S): stuck, not merely slow.
bool all_asleep(pid_t pid);
// A hung process's threads (state and wait channel) and those of its descendants; with gdb,
// every thread's stack.
void diagnose(pid_t pid, bool gdb);

// Median and maximum of a list of figures (0 when empty).
double median(std::vector<double> v);
double maximum(const std::vector<double>& v);

// Seconds since start, for figures.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace stress
