// mpi_backend.hpp: MpiBackend — the backend of MpiPool: worker ranks of an MPI job, fed by one
// communication thread on rank 0. Its internals are in src/backend/mpi/; this header only
// encodes a task, names its functions by offset, and hands it over. No <mpi.h> here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "mproc/detail/buffer.hpp"
#include "mproc/detail/invoke.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/send_checks.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/pool_options.hpp"

namespace mproc::detail {

class MpiPoolCore;

// Makes the code addresses of a task frame (encode_task) offsets in their modules, which every
// rank finds in its own memory (rename_task_code).
void mpi_name_functions(Writer& task);

class MpiBackend {
 public:
  static constexpr bool sends_functions = true;   // by offset in the binary every rank runs
  static constexpr bool copies_arguments = true;  // encoded in submit()

  // On a worker rank this never returns: the rank serves pools until rank 0 finishes.
  explicit MpiBackend(PoolOptions options);
  MpiBackend(const MpiBackend&) = delete;
  MpiBackend& operator=(const MpiBackend&) = delete;
  ~MpiBackend();

  [[nodiscard]] unsigned size() const noexcept;
  [[nodiscard]] JobHost* host() noexcept;
  void check_running() const;  // throws PoolNotRunning

  // Job<R>: the call's ValueJob<R>, ListJob<R> or StreamJob<R>; R is what its results are read as.
  template <Style S, template <class> class Job, class R, class Fn, class Item>
  void submit(const std::shared_ptr<Job<R>>& job, const Fn& fn, std::span<const Item> items, std::size_t first,
              const std::shared_ptr<const void>& keep_alive);

  void close();
  void join();
  void terminate();
  void shutdown() noexcept;  // close() and join(), for destructors

  // The ranks serving this pool, in order. For tests and tools.
  [[nodiscard]] std::vector<int> worker_ranks() const;

 private:
  void enqueue(std::shared_ptr<JobBase> job, std::size_t first, std::size_t count, Writer payload, ResultReader read);
  Writer take_buffer();

  std::unique_ptr<MpiPoolCore> core_;
};

template <Style S, template <class> class Job, class R, class Fn, class Item>
void MpiBackend::submit(const std::shared_ptr<Job<R>>& job, const Fn& fn, std::span<const Item> items,
                        std::size_t first, const std::shared_ptr<const void>&) {
  Writer payload = take_buffer();
  try {
    encode_task<S>(payload, fn, items);
    mpi_name_functions(payload);
  } catch (...) {
    // The arguments cannot be sent: these tasks fail, the pool goes on.
    job->fail(first, items.size(), std::current_exception());
    return;
  }
  enqueue(job, first, items.size(), std::move(payload), &read_results_of<R>);
}

}  // namespace mproc::detail
