/// @file
/// insights.hpp: Insights — where a pool's time went, per worker (tasks and chunks run, time
/// working, waiting, encoding and decoding, start-up, restarts) and its slowest tasks; recorded
/// when PoolOptions::insights is set, read with pool.insights(), printed as a table.
#pragma once

#include <chrono>
#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

namespace mproc {

/// One worker (a process, a thread, an MPI rank), over the pool's life so far; a worker that
/// replaced another continues its line.
struct WorkerInsights {
  unsigned worker = 0;                 ///< its worker_id(), or its rank for MpiPool
  int pid = 0;                         ///< its process id now (0: none)
  std::size_t tasks = 0;               ///< items run (a map's chunk of 10 counts 10)
  std::size_t chunks = 0;              ///< chunks run
  std::chrono::nanoseconds busy{};     ///< in chunks: working + codec
  std::chrono::nanoseconds working{};  ///< in the task functions (short tasks, timed in blocks: with their decoding)
  std::chrono::nanoseconds codec{};    ///< in chunks but not in tasks: decoding arguments, encoding results
  std::chrono::nanoseconds idle{};     ///< waiting for work since it was ready
  std::chrono::nanoseconds startup{};  ///< from its start (fork, thread) to ready for work, last start
  int restarts = 0;                    ///< times it was replaced (died, killed, recycled)
};

/// One of the slowest tasks a pool ran.
struct SlowTask {
  std::size_t call = 0;             ///< which call, numbered from 0 in the order the pool first saw them
  std::string kind;                 ///< the call's kind: "map", "starmap", "imap", "imap_unordered", "apply"
  std::size_t index = 0;            ///< the item's position in the call's input
  std::chrono::nanoseconds took{};  ///< how long it ran
  unsigned worker = 0;              ///< who ran it
};

/// A snapshot of a pool's insights (pool.insights()). A value: safe to keep and print anywhere.
struct Insights {
  std::string pool;                     ///< "process", "thread" or "mpi"
  std::chrono::nanoseconds wall{};      ///< since the pool started
  std::vector<WorkerInsights> workers;  ///< one per worker, in order
  std::vector<SlowTask> slowest;        ///< the slowest tasks, slowest first (5 at most)
};

/// Prints insights as an aligned table: a row per worker, then the slowest tasks.
std::ostream& operator<<(std::ostream& out, const Insights& insights);

}  // namespace mproc
