/// @file
/// mproc.hpp: the umbrella header — every public header of mproc (Pool, ThreadPool, Process,
/// queues, pipes, locks, shared memory, errors, codec), and its version:
///
///     MPROC_VERSION        MAJOR * 10000 + MINOR * 100 + PATCH, for #if
///     version()            the same as a "MAJOR.MINOR.PATCH" string
/// Not MpiPool: it needs MPI and its own library; include mproc/mpi_pool.hpp and link mproc::mpi.
#pragma once

/// The version's three parts, each a number; MPROC_VERSION combines them.
///@{
#define MPROC_VERSION_MAJOR 0
#define MPROC_VERSION_MINOR 1
#define MPROC_VERSION_PATCH 0
///@}
/// MAJOR * 10000 + MINOR * 100 + PATCH, as taskflow's TF_VERSION.
#define MPROC_VERSION (MPROC_VERSION_MAJOR * 10000 + MPROC_VERSION_MINOR * 100 + MPROC_VERSION_PATCH)

#include "mproc/async_result.hpp"
#include "mproc/bind.hpp"
#include "mproc/codec.hpp"
#include "mproc/cpu.hpp"
#include "mproc/errors.hpp"
#include "mproc/futures.hpp"
#include "mproc/insights.hpp"
#include "mproc/pipe.hpp"
#include "mproc/pool.hpp"
#include "mproc/pool_options.hpp"
#include "mproc/process.hpp"
#include "mproc/progress.hpp"
#include "mproc/queue.hpp"
#include "mproc/shared_heap.hpp"
#include "mproc/shared_memory.hpp"
#include "mproc/sync.hpp"
#include "mproc/thread_pool.hpp"

namespace mproc {

/// The version as "MAJOR.MINOR.PATCH", spelled from the macros above (CMake reads them too).
constexpr const char* version() noexcept {
#define MPROC_DETAIL_STR2(x) #x
#define MPROC_DETAIL_STR(x) MPROC_DETAIL_STR2(x)
  return MPROC_DETAIL_STR(MPROC_VERSION_MAJOR) "." MPROC_DETAIL_STR(MPROC_VERSION_MINOR) "." MPROC_DETAIL_STR(
      MPROC_VERSION_PATCH);
#undef MPROC_DETAIL_STR
#undef MPROC_DETAIL_STR2
}

}  // namespace mproc
