// worker_identity.hpp: how a pool's worker tells worker_id() and current_process() who it is.
// Set by each backend in its worker, read by the public functions in src/primitives/process.cpp.
#pragma once

#include <sys/types.h>

namespace mproc::detail {

// In a Pool worker, right after its fork: worker_id() is id, current_process() is
// "PoolWorker-<id>", and parent_process() the program that forked it (parent).
void become_pool_worker(unsigned id, pid_t parent) noexcept;
// In an MpiPool worker rank: worker_id() is id for every thread of this process.
void set_process_worker_id(unsigned id) noexcept;
// In a ThreadPool's worker thread: worker_id() is id for the calling thread.
void set_thread_worker_id(unsigned id) noexcept;

}  // namespace mproc::detail
