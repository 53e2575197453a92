// fork_helper.hpp: run a function in a forked child that leaves with _exit, for tests of the
// shared primitives that do not depend on mproc::Process.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <exception>

namespace mproc::test {

// The child exits 0 when f returns, 1 when it throws.
template <class F>
pid_t fork_child(F f) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int code = 0;
    try {
      f();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child threw: %s\n", e.what());
      code = 1;
    } catch (...) {
      code = 1;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  return pid;
}

// The raw wait status of the child.
inline int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) == -1) {
  }
  return status;
}

inline bool exited_ok(pid_t pid) {
  int st = wait_child(pid);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

}  // namespace mproc::test
