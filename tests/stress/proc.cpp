// What the stress scenarios read from /proc and /dev/shm, and what they print about a hung
// process.
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "stress.hpp"

namespace stress {
namespace {

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(d);
  }
  return names;
}

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The state letter of /proc/<path>/stat (R, S, D, Z, ...), after the command's parentheses.
char state_of(const std::string& stat_path) {
  std::string stat = read_line(stat_path);
  auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? '?' : stat[close + 2];
}

void print_threads(pid_t pid) {
  std::string base = "/proc/" + std::to_string(pid);
  std::cout << "  process " << pid << " (" << read_line(base + "/comm") << "):\n";
  for (const auto& tid : entries(base + "/task")) {
    std::string task = base + "/task/" + tid;
    std::cout << "    thread " << tid << " " << read_line(task + "/comm") << ": state " << state_of(task + "/stat")
              << ", waiting in " << read_line(task + "/wchan") << "\n";
  }
}

// gdb's stacks of every thread of pid, bounded in time (gdb itself may stall on a sick process).
void print_stacks(pid_t pid) {
  std::cout.flush();
  pid_t gdb = ::fork();
  if (gdb == 0) {
    std::string target = std::to_string(pid);
    ::execlp("timeout", "timeout", "-k", "5", "60", "gdb", "-nx", "-batch", "-p", target.c_str(), "-ex",
             "set pagination off", "-ex", "thread apply all bt 20", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  if (gdb > 0) ::waitpid(gdb, nullptr, 0);
}

}  // namespace

std::set<pid_t> descendants_of(pid_t pid) {
  std::set<pid_t> found;
  std::vector<pid_t> todo{pid};
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    for (pid_t c : children_of(p))
      if (found.insert(c).second) todo.push_back(c);
  }
  return found;
}

long resident_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

bool alive(pid_t pid) {
  char state = state_of("/proc/" + std::to_string(pid) + "/stat");
  return state != '?' && state != 'Z' && state != 'X';
}

bool all_asleep(pid_t pid) {
  std::set<pid_t> all = descendants_of(pid);
  all.insert(pid);
  for (pid_t p : all) {
    std::string base = "/proc/" + std::to_string(p) + "/task/";
    for (const auto& tid : entries(base)) {
      char state = state_of(base + tid + "/stat");
      if (state == 'R' || state == 'D') return false;
    }
  }
  return true;
}

void diagnose(pid_t pid, bool gdb) {
  std::cout << "threads of the hung process and of its descendants:\n";
  print_threads(pid);
  for (pid_t d : descendants_of(pid)) print_threads(d);
  if (gdb) print_stacks(pid);
  std::cout.flush();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double maximum(const std::vector<double>& v) { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }

}  // namespace stress
