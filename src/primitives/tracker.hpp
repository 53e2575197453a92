// tracker.hpp: the cleanup owner of named shared memory. See tracker.cpp.
#pragma once

#include <string>

namespace mproc::detail {

// Starts this program's tracker if it has none, before a block is made: what can fail here then
// leaves nothing behind. Throws std::system_error when no pipe can be made; when the fork fails,
// the program goes on without a tracker (blocks then rely on unlink() alone).
void tracker_start();
// Records that this program created the block (name with its leading '/'); after tracker_start().
// Never throws: the block exists by then, and a record the tracker cannot get only leaves
// cleanup to unlink().
void tracker_register(const std::string& name) noexcept;
// Records that the block was unlinked.
void tracker_unregister(const std::string& name) noexcept;

}  // namespace mproc::detail
