// pool.hpp: Pool — Python's multiprocessing.Pool: worker processes forked when the pool is built.
#pragma once

#include "mproc/basic_pool.hpp"
#include "mproc/detail/process_backend.hpp"

namespace mproc {

// A pool of worker processes, forked when the pool is built. Functions cross by address, so
// they must be plain functions, captureless lambdas or empty function objects; arguments and
// results must be Sendable (see codec.hpp). A worker that dies costs only the task it ran
// (WorkerLost) and is replaced. Safe to share between threads; not usable in a forked child.
using Pool = BasicPool<detail::ProcessBackend>;

}  // namespace mproc
