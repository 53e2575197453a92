// tracker.hpp: the cleanup owner of named shared memory. See tracker.cpp.
#pragma once

#include <string>

namespace mproc::detail {

// Records that this program created the block (name with its leading '/').
void tracker_register(const std::string& name);
// Records that the block was unlinked.
void tracker_unregister(const std::string& name);

}  // namespace mproc::detail
