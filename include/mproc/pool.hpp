/// @file
/// pool.hpp: Pool — Python's multiprocessing.Pool: worker processes forked when the pool is built.
#pragma once

#include "mproc/basic_pool.hpp"
#include "mproc/detail/process_backend.hpp"

namespace mproc {

/// A pool of worker processes, forked when the pool is built (and again for each replacement):
/// a worker sees this program as it was at its own fork (docs/process-safety.md). Functions cross
/// by address, so they must be plain functions, captureless lambdas or empty function objects
/// (a capturing lambda does not compile); arguments and results must be Sendable (codec.hpp).
/// A worker that dies costs only the chunk it ran (WorkerLost) and is replaced; workers die with
/// the program (docs/failure-and-recovery.md). Safe to share between threads; not usable in a
/// forked child. The destructor finishes submitted work; terminate() is explicit.
using Pool = BasicPool<detail::ProcessBackend>;

}  // namespace mproc
