// leak_check.hpp: what the test main() checks after every test — child processes of this
// process and entries in /dev/shm — exposed for tests that check them explicitly.
#pragma once

#include <set>
#include <string>

#include "processes.hpp"

namespace mproc::test {
// The /dev/shm entries present now that were not in before. Tests run in parallel, so another
// test's entries come and go meanwhile: a test checks what it added, never equality.
std::set<std::string> new_shm_entries(const std::set<std::string>& before);
}  // namespace mproc::test
