#include "mproc/pool_options.hpp"

#include <stdexcept>
#include <string>

#include "mproc/cpu.hpp"

namespace mproc::detail {

unsigned checked_pool_size(const PoolOptions& options) {
  if (options.processes && *options.processes <= 0)
    throw std::invalid_argument(
        "mproc: a pool needs at least one worker (processes = " + std::to_string(*options.processes) + ")");
  if (options.processes && *options.processes > 4096)
    throw std::invalid_argument("mproc: processes = " + std::to_string(*options.processes) +
                                " is more workers than mproc supports (4096)");
  if (options.maxtasksperchild && *options.maxtasksperchild <= 0)
    throw std::invalid_argument("mproc: maxtasksperchild must be positive (got " +
                                std::to_string(*options.maxtasksperchild) + ")");
  if (options.task_timeout && options.task_timeout->count() <= 0)
    throw std::invalid_argument("mproc: task_timeout must be positive");
  if (options.memory_limit && *options.memory_limit < PoolOptions::min_memory_limit)
    throw std::invalid_argument("mproc: memory_limit = " + std::to_string(*options.memory_limit) +
                                " bytes is below the minimum of " + std::to_string(PoolOptions::min_memory_limit) +
                                " bytes (32 MiB): a worker needs that much for its buffers, a thread's stack "
                                "and malloc's arenas before a task's data");
  if (options.max_worker_rss && *options.max_worker_rss == 0)
    throw std::invalid_argument("mproc: max_worker_rss must be positive");
  if (options.retries < 0)
    throw std::invalid_argument("mproc: retries must be zero or more (got " + std::to_string(options.retries) + ")");
  return options.processes ? static_cast<unsigned>(*options.processes) : process_cpu_count();
}

}  // namespace mproc::detail
