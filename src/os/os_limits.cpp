#include "os/os_limits.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mproc::detail::os {
namespace {

// Reads a small file whole into buf (NUL-ended); returns its length, or -1.
ssize_t read_small(const char* path, char* buf, std::size_t size) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  std::size_t got = 0;
  while (got + 1 < size) {
    ssize_t n = ::read(fd, buf + got, size - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  buf[got] = '\0';
  return static_cast<ssize_t>(got);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw_error(errno, "open", path);
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) throw_error(n < 0 ? err : EIO, "write", path + " <- " + text);
}

bool has_word(const std::string& text, const std::string& word) {
  std::istringstream in(text);
  for (std::string w; in >> w;)
    if (w == word) return true;
  return false;
}

// The value after "key " on a line of a flat-keyed cgroup file (memory.events).
std::size_t keyed_value(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  for (std::string k, v; in >> k >> v;)
    if (k == key) return std::strtoull(v.c_str(), nullptr, 10);
  return 0;
}

// Where cgroup2 is mounted and which group its root is (mountinfo: "... root mountpoint ... -
// cgroup2 ..."); empty when it is not.
std::pair<std::string, std::string> cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream fields(line.substr(0, dash));
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    return {point, root};
  }
  return {};
}

// This process's group in the unified hierarchy ("0::/path" in /proc/self/cgroup).
std::optional<std::string> unified_group() {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return std::nullopt;
}

}  // namespace

std::size_t data_bytes() noexcept {
  char text[4096];
  if (read_small("/proc/self/status", text, sizeof text) <= 0) return 0;
  const char* at = std::strstr(text, "\nVmData:");
  if (!at) return 0;
  return static_cast<std::size_t>(std::strtoull(at + 8, nullptr, 10)) * 1024;  // in kB
}

void limit_data(std::size_t bytes) {
  rlimit limit{bytes, bytes};
  if (::setrlimit(RLIMIT_DATA, &limit) != 0) throw_error(errno, "setrlimit", "RLIMIT_DATA " + std::to_string(bytes));
}

std::optional<std::string> delegated_memory_cgroup() noexcept {
  try {
    auto [point, root] = cgroup2_mount();
    auto group = unified_group();
    if (point.empty() || !group) return std::nullopt;
    // Inside a cgroup namespace or a bind mount, the mount's root is a group of its own.
    if (root != "/") {
      if (group->rfind(root, 0) != 0) return std::nullopt;
      group->erase(0, root.size());
    }
    std::string dir = point + (*group == "/" ? "" : *group);
    if (!has_word(read_text(dir + "/cgroup.controllers"), "memory")) return std::nullopt;
    if (!has_word(read_text(dir + "/cgroup.subtree_control"), "memory")) return std::nullopt;
    if (::access(dir.c_str(), W_OK) != 0) return std::nullopt;
    return dir;
  } catch (...) {
    return std::nullopt;
  }
}

MemoryGroup::MemoryGroup(const std::string& parent_dir, const std::string& name, std::size_t limit)
    : dir_(parent_dir + "/" + name) {
  if (::mkdir(dir_.c_str(), 0700) != 0) throw_error(errno, "mkdir", dir_);
  try {
    write_text(dir_ + "/memory.max", std::to_string(limit));
    if (::access((dir_ + "/memory.swap.max").c_str(), F_OK) == 0) write_text(dir_ + "/memory.swap.max", "0");
    write_text(dir_ + "/memory.oom.group", "1");
    const std::string procs = dir_ + "/cgroup.procs";
    procs_ = Fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!procs_) throw_error(errno, "open", procs);
  } catch (...) {
    ::rmdir(dir_.c_str());
    throw;
  }
}

MemoryGroup::~MemoryGroup() {
  procs_.reset();
  // What a task started and moved out of the worker's process group is still in its cgroup.
  try {
    write_text(dir_ + "/cgroup.kill", "1");  // Linux 5.14
  } catch (...) {
  }
  for (int i = 0; i < 100 && ::rmdir(dir_.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(1000);
}

bool MemoryGroup::enter(int procs_fd) noexcept { return ::write(procs_fd, "0", 1) == 1; }

bool MemoryGroup::oom_killed() const noexcept {
  try {
    return keyed_value(read_text(dir_ + "/memory.events"), "oom_kill") > 0;
  } catch (...) {
    return false;
  }
}

std::size_t MemoryGroup::peak() const noexcept {
  try {
    for (const char* file : {"/memory.peak", "/memory.current"}) {
      char text[64];
      if (read_small((dir_ + file).c_str(), text, sizeof text) > 0) return std::strtoull(text, nullptr, 10);
    }
  } catch (...) {
  }
  return 0;
}

bool readable_within(int fd, Nanos timeout) noexcept {
  pollfd p{fd, POLLIN, 0};
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  const timespec ts{static_cast<time_t>(secs.count()), static_cast<long>((timeout - secs).count())};
  return ::ppoll(&p, 1, &ts, nullptr) > 0;
}

}  // namespace mproc::detail::os
