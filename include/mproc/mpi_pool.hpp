/// @file
/// mpi_pool.hpp: MpiPool — Python's Pool API across the ranks of an MPI job (Open MPI); with
/// mpi.hpp: mproc::mpi::serve(), rank(), size(), finalize(), which say where each rank stands.
///
/// Build the program once, link mproc::mpi, and launch it with `mpirun -n N ./program`: rank 0
/// runs main() and holds the pool; ranks 1 .. N-1 are its workers. See docs/mpi.md.
#pragma once

#include "mproc/basic_pool.hpp"
#include "mproc/detail/mpi_backend.hpp"
#include "mproc/mpi.hpp"  // IWYU pragma: export

namespace mproc {

/// A pool whose workers are the other ranks of this MPI job, on this machine or others.
/// Functions cross as their offset in the program's binary, so every rank must run the same
/// binary (checked at start-up); as with Pool they must be plain functions, captureless lambdas
/// or empty function objects, and arguments and results must be Sendable (see codec.hpp).
///
/// Where a worker rank begins serving: the first MpiPool built on it (its constructor never
/// returns there) or an earlier mproc::mpi::serve(). Until then every rank runs main() alike, so
/// what the program sets up before that point, the workers see — as a forked worker would.
///
/// Safe to share between threads on rank 0. One MpiPool at a time (a second one while the first
/// lives throws std::logic_error); one after another is fine. A rank that dies ends the whole
/// MPI job (MPI's failure model): there is no WorkerLost here. A worker rank that dies of a signal
/// or calls exit() first prints which rank it was, what killed it, and whether a task was running.
/// terminate() cannot stop a task that is already running on a rank: it fails unfinished work at
/// once and waits for those.
/// PoolOptions: processes <= size() - 1 (default: all worker ranks); an initializer must be a
/// plain function (wrap a captureless lambda as +[] { ... }); task_timeout is refused;
/// maxtasksperchild has no effect (a rank is never replaced).
using MpiPool = BasicPool<detail::MpiBackend>;
/// mpi4py.futures' name for it (concurrent.futures, futures.hpp): the same type.
using MPIPoolExecutor = MpiPool;

}  // namespace mproc
