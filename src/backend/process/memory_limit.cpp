#include "backend/process/memory_limit.hpp"

#include <signal.h>

#include <atomic>
#include <new>

#include "mproc/detail/wire.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {
namespace {

std::atomic<unsigned> g_pools{0};  // names each pool's groups apart from the others'

// The worker's own: set once, before its first task.
SlotShared* g_shared = nullptr;
std::size_t g_start_bytes = 0;  // its private memory when it set its limit

// An allocation failed: what the worker used past its start, and the chunk it was running.
void note_out_of_memory() noexcept {
  const std::size_t now = os::data_bytes();
  g_shared->memory_used.store(now > g_start_bytes ? now - g_start_bytes : 0, std::memory_order_relaxed);
  g_shared->memory_failed_seq.store(g_shared->started_seq.load(std::memory_order_relaxed), std::memory_order_release);
}

// operator new's failure, noted before it throws as usual: if the worker dies of it (in a
// noexcept function, or where the task cannot go on), the watcher still knows why.
void on_new_failure() {
  note_out_of_memory();
  throw std::bad_alloc();
}

// A std::bad_alloc the task let escape ends the worker: its memory may be in any state.
void on_task_error(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::bad_alloc&) {
    note_out_of_memory();
    os::flush_stdio();
    os::exit_now(kMemoryLimitExit);
  } catch (...) {
  }
}

}  // namespace

MemoryLimiter::MemoryLimiter(const PoolOptions& options) : limit_(options.memory_limit) {
  if (!limit_) return;
  if (auto dir = os::delegated_memory_cgroup()) {
    mechanism_ = Mechanism::cgroup;
    cgroup_dir_ = *dir;
    group_prefix_ = "mproc-" + std::to_string(os::getpid()) + "-" + std::to_string(g_pools.fetch_add(1)) + "-";
  } else {
    mechanism_ = Mechanism::rlimit;
  }
}

int MemoryLimiter::prepare(const Slot& slot) {
  if (mechanism_ != Mechanism::cgroup) return -1;
  if (groups_.size() <= slot.id) groups_.resize(slot.id + 1);
  groups_[slot.id].reset();  // a group left by a worker that never reached verdict()
  groups_[slot.id] =
      std::make_unique<os::MemoryGroup>(cgroup_dir_, group_prefix_ + std::to_string(spawned_++), *limit_);
  return groups_[slot.id]->procs_fd();
}

MemoryLimiter::Remains MemoryLimiter::remains_of(const Slot& slot) {
  Remains remains;
  if (mechanism_ == Mechanism::none) return remains;
  if (slot.id < groups_.size()) remains.group = std::move(groups_[slot.id]);
  remains.failed_seq = slot.shared->memory_failed_seq.load(std::memory_order_acquire);
  remains.used = slot.shared->memory_used.load(std::memory_order_relaxed);
  return remains;
}

std::exception_ptr MemoryLimiter::verdict(Remains remains, std::uint64_t seq, pid_t pid, const os::ExitStatus& status,
                                          int attempts) const {
  if (mechanism_ == Mechanism::none) return nullptr;
  const int sig = status.signaled ? status.signal : 0;
  const int code = status.signaled ? 0 : status.code;
  std::exception_ptr error;
  if (seq && remains.group && remains.group->oom_killed())
    error = std::make_exception_ptr(MemoryLimitError(pid, sig, code, *limit_, remains.group->peak(), attempts));
  else if (seq && remains.failed_seq == seq)
    error = std::make_exception_ptr(MemoryLimitError(pid, sig, code, *limit_, remains.used, attempts));
  return error;  // the group: removed here, after whatever a task left in it is killed
}

void limit_worker_memory(SlotShared& shared, std::size_t limit, int cgroup_fd) noexcept {
  if (cgroup_fd >= 0 && os::MemoryGroup::enter(cgroup_fd)) return;
  g_shared = &shared;
  g_start_bytes = os::data_bytes();
  std::set_new_handler(on_new_failure);
  task_error_hook = on_task_error;
  try {
    os::limit_data(g_start_bytes + limit);
  } catch (...) {
    os::exit_now(1);  // a pool that cannot limit its workers' memory must not run them unlimited
  }
}

}  // namespace mproc::detail
