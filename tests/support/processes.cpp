// What tests read from /proc and /dev/shm, and their waits for children (processes.hpp).
#include "processes.hpp"

#include <dirent.h>
#include <sys/wait.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <thread>

#include "mproc/detail/process_backend.hpp"

namespace mproc::test {
namespace {

// The names in dir, without "." and "..", calling each(name) for each.
template <class Each>
void for_each_entry(const std::string& dir, Each each) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") each(name, ::dirfd(d));
  }
  ::closedir(d);
}

constexpr auto kPoll = std::chrono::milliseconds(1);

}  // namespace

std::set<int> open_fds() {
  std::set<int> fds;
  for_each_entry("/proc/self/fd", [&](const std::string& name, int own) {
    if (std::stoi(name) != own) fds.insert(std::stoi(name));
  });
  return fds;
}

std::size_t thread_count() {
  std::size_t n = 0;
  for_each_entry("/proc/self/task", [&](const std::string&, int) { ++n; });
  return n;
}

std::set<pid_t> children_of(pid_t pid) {
  std::set<pid_t> kids;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task/";
  for_each_entry(tasks, [&](const std::string& tid, int) {
    std::ifstream in(tasks + tid + "/children");
    for (pid_t k = 0; in >> k;) kids.insert(k);
  });
  // This program's guard, a subreaper's child for the program's life, is not a test's doing.
  if (pid == ::getpid()) kids.erase(mproc::detail::program_guard_pid());
  return kids;
}

std::set<std::string> shm_entries() {
  std::set<std::string> names;
  for_each_entry("/dev/shm", [&](const std::string& name, int) { names.insert(name); });
  return names;
}

bool reaped_within(pid_t pid, std::chrono::steady_clock::duration timeout, int* status) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    const pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r > 0 && (pid == -1 || r == pid)) {
      if (status) *status = st;
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPoll);  // r < 0 too: an orphan may not have come to us yet
  }
}

std::set<pid_t> reap_children(std::chrono::steady_clock::duration timeout) {
  std::set<pid_t> reaped;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const pid_t r = ::waitpid(-1, nullptr, WNOHANG);
    if (r > 0) {
      reaped.insert(r);
      continue;
    }
    // Only this program's guard left (a subreaper's child until the program ends): done.
    if ((r < 0 && errno == ECHILD) || (r == 0 && children_of().empty()) || std::chrono::steady_clock::now() >= deadline)
      return reaped;
    std::this_thread::sleep_for(kPoll);
  }
}

}  // namespace mproc::test
