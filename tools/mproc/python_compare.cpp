// python_compare.cpp: see python_compare.hpp. Python runs as a child through posix_spawn, its
// stdout read through a pipe; nothing of the demo's own pools exists yet when it runs.
#include "python_compare.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

extern char** environ;

namespace mproc::tool {
namespace {

// A child's outcome: its exit status (-1: ended by a signal) and what it wrote to stdout.
struct Ran {
  int status = -1;
  std::string out;
};

// Runs argv[0] with argv, stdout to a pipe read here (or to /dev/null when quiet, with stderr
// too). Throws std::runtime_error naming the program when it cannot be started.
Ran run(const std::vector<std::string>& argv, bool quiet) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("cannot make a pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (quiet) {
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  } else {
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);  // dup2 clears close-on-exec on 1
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int error = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (error != 0) {
    ::close(fds[0]);
    throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(error));
  }
  Ran ran;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      ran.out.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ran.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ran;
}

}  // namespace

void check_python(const std::string& python, const std::string& script) {
  if (::access(script.c_str(), R_OK) != 0)
    throw std::runtime_error("--compare-python: cannot read " + script + " (bench/article.py of mproc's sources)");
  int status = -1;
  try {
    status = run({python, "-c", "import numpy"}, true).status;
  } catch (const std::runtime_error&) {  // it cannot be started: said below
  }
  if (status != 0)
    throw std::runtime_error("--compare-python: " + python +
                             " cannot run or has no numpy (on Debian: apt install python3-numpy)");
}

std::map<std::string, PythonMode> run_article_py(const std::string& python, const std::string& script,
                                                 const std::vector<std::string>& args) {
  std::vector<std::string> argv{python, script, "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  const Ran ran = run(argv, false);
  if (ran.status != 0 && ran.status != 1)
    throw std::runtime_error("--compare-python: " + script + " failed (exit status " + std::to_string(ran.status) +
                             ")");
  std::map<std::string, PythonMode> modes;
  try {
    const nlohmann::json result = nlohmann::json::parse(ran.out);
    for (const auto& e : result.at("modes"))
      modes[e.at("mode").get<std::string>()] = {e.at("seconds").get<double>(), e.at("total").get<long long>(),
                                                e.at("ok").get<bool>()};
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("--compare-python: " + script + " did not print its JSON (" + e.what() + ")");
  }
  return modes;
}

}  // namespace mproc::tool
