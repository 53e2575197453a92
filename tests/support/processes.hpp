// processes.hpp: what tests read about their own process from /proc and /dev/shm (its fds,
// threads and children, the shared-memory entries), and how they wait for a child to end.
// Shared by the unit tests and the stress tier; no GoogleTest here.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <set>
#include <string>

namespace mproc::test {

std::set<int> open_fds();    // this process's fds, without the probe's own
std::size_t thread_count();  // entries of /proc/self/task
// From /proc/<pid>/task/*/children; for this process, without the program's guard process (which
// a subreaper gets as a child when its first pool makes it: detail::program_guard_pid()).
std::set<pid_t> children_of(pid_t pid = ::getpid());
std::set<std::string> shm_entries();  // names in /dev/shm

// Waits up to timeout for pid (our child; -1: any child) to end, and reaps it; true if it did.
// Its wait status goes to *status when given.
bool reaped_within(pid_t pid, std::chrono::steady_clock::duration timeout, int* status = nullptr);
// Reaps our children (orphans that came to this subreaper included) until none is left but the
// program's guard, or timeout passes; returns the pids reaped.
std::set<pid_t> reap_children(std::chrono::steady_clock::duration timeout);

}  // namespace mproc::test
