// mpi_backend.hpp: MpiBackend — the backend of MpiPool: worker ranks of an MPI job, fed by one
// communication thread on rank 0. Its internals are in src/backend/mpi/; this header only hands
// each chunk to the pool's ChunkBook, with the naming of its functions by offset. No <mpi.h> here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "mproc/detail/chunk_book.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/send_checks.hpp"
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
  void cancel_queued();      // chunks not yet handed to a rank are cancelled (shutdown(cancel_futures))
  void shutdown() noexcept;  // close() and join(), for destructors

  // Null unless PoolOptions::insights.
  [[nodiscard]] const InsightsRecorder* insights() const noexcept;

  // The ranks serving this pool, in order. For tests and tools.
  [[nodiscard]] std::vector<int> worker_ranks() const;

 private:
  std::unique_ptr<MpiPoolCore> core_;
  ChunkBook* book_ = nullptr;  // the core's
};

template <Style S, template <class> class Job, class R, class Fn, class Item>
void MpiBackend::submit(const std::shared_ptr<Job<R>>& job, const Fn& fn, std::span<const Item> items,
                        std::size_t first, const std::shared_ptr<const void>&) {
  book_->submit<S>(job, fn, items, first, &mpi_name_functions);
}

}  // namespace mproc::detail
