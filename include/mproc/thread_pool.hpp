/// @file
/// thread_pool.hpp: ThreadPool — the Pool API over worker threads of this process.
#pragma once

#include "mproc/basic_pool.hpp"
#include "mproc/detail/thread_backend.hpp"

namespace mproc {

/// A pool of worker threads: the same API as Pool, but any callable (capturing lambdas
/// included), no encoding of arguments or results, and exceptions arrive as their own type.
/// Safe to share between threads. A thread cannot be killed: terminate() lets running tasks
/// finish, task_timeout is refused, and maxtasksperchild has no effect.
using ThreadPool = BasicPool<detail::ThreadBackend>;

}  // namespace mproc
