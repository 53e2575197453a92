// process_backend.hpp: ProcessBackend — the backend of Pool: workers forked when the pool is
// built, each fed through its own shared-memory channel. Its internals are in
// src/backend/process/; this header only hands each chunk to the pool's ChunkBook.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "mproc/detail/chunk_book.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/job_allocator.hpp"
#include "mproc/detail/region_registry.hpp"
#include "mproc/detail/send_checks.hpp"
#include "mproc/pool_options.hpp"

namespace mproc::detail {

class ProcessPoolCore;

// For tests: when set, every worker forked from then on calls it first thing in the child (to
// stand for a worker that never starts, as one forked while another thread held a lock it needs).
extern void (*worker_start_hook)() noexcept;

// For tests: the program's guard process, which every pool of this process shares and which is no
// one's child (src/backend/process/guard.hpp); 0 until this process makes its first pool.
[[nodiscard]] int program_guard_pid() noexcept;

class ProcessBackend {
 public:
  static constexpr bool sends_functions = true;      // by address: valid in every forked worker
  static constexpr bool copies_arguments = true;     // encoded in submit()
  static constexpr bool kills_tasks = true;          // task_timeout and TaskTimeout are enforced
  static constexpr bool reads_in_place = true;       // see shares() and submit_in_place()
  static constexpr std::size_t job_block_min = 160;  // out of glibc's fastbins: see JobAllocator

  explicit ProcessBackend(PoolOptions options);
  ProcessBackend(const ProcessBackend&) = delete;
  ProcessBackend& operator=(const ProcessBackend&) = delete;
  ~ProcessBackend();

  [[nodiscard]] unsigned size() const noexcept;
  [[nodiscard]] JobHost* host() noexcept;
  void check_running() const;  // throws PoolNotRunning

  template <Style S, template <class> class Job, class R, class Fn, class Item>
  void submit(const std::shared_ptr<Job<R>>& job, const Fn& fn, std::span<const Item> items, std::size_t first,
              const std::shared_ptr<const void>& keep_alive);

  // Whether [p, p + bytes) lies in memory every worker maps at the same address and sees change:
  // the shared heap (an mproc::Array, pmr containers made with mproc::shared_resource()), which
  // every process of the program maps before any pool forks.
  [[nodiscard]] bool shares(const void* p, std::size_t bytes) const noexcept {
    return in_shared_region(p, bytes, regions_before_);
  }
  // As submit, for items that shares() and that stay unchanged until their tasks have run:
  // the worker reads them where they are, and nothing but their address is copied.
  template <Style S, template <class> class Job, class R, class Fn, class Item>
  void submit_in_place(const std::shared_ptr<Job<R>>& job, const Fn& fn, std::span<const Item> items,
                       std::size_t first);

  void close();
  void join();
  void terminate();
  void shutdown() noexcept;  // close() and join(), for destructors
  void cancel_queued();      // every chunk no worker claimed is cancelled (shutdown(cancel_futures))

  // Null unless PoolOptions::insights.
  [[nodiscard]] const InsightsRecorder* insights() const noexcept;

  // The workers' process ids, in slot order (0 for a slot being replaced). For tests and tools.
  [[nodiscard]] std::vector<int> worker_pids() const;

 private:
  std::uint64_t regions_before_;  // shared regions made before the workers were forked
  std::unique_ptr<ProcessPoolCore> core_;
  ChunkBook* book_;  // the core's
};

// A caller waiting for a big result of R readies the memory it will read it into while the
// worker makes it (TypedJob::prepare_to_read): for results the codec reads into spare buffers.
template <class R>
void install_result_readying() noexcept {
  if constexpr (spare_kind_v<R>) {
    static constexpr ReadyingHooks kHooks{&prepare_spare<R>, &unprepare_spare<R>};
    auto& hooks = ResultReadying<R>::hooks;
    if (!hooks.load(std::memory_order_relaxed)) hooks.store(&kHooks, std::memory_order_release);
  }
}

template <Style S, template <class> class Job, class R, class Fn, class Item>
void ProcessBackend::submit(const std::shared_ptr<Job<R>>& job, const Fn& fn, std::span<const Item> items,
                            std::size_t first, const std::shared_ptr<const void>&) {
  install_result_readying<R>();
  book_->submit<S>(job, fn, items, first);
}

template <Style S, template <class> class Job, class R, class Fn, class Item>
void ProcessBackend::submit_in_place(const std::shared_ptr<Job<R>>& job, const Fn& fn, std::span<const Item> items,
                                     std::size_t first) {
  install_result_readying<R>();
  book_->submit_in_place<S>(job, fn, items, first);
}

}  // namespace mproc::detail
