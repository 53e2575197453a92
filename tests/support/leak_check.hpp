// leak_check.hpp: what the test main() checks after every test — child processes of this
// process and entries in /dev/shm — exposed for tests that check them explicitly.
#pragma once

#include <set>
#include <string>

namespace mproc::test {
std::set<std::string> shm_entries();
std::set<int> child_pids();
}  // namespace mproc::test
