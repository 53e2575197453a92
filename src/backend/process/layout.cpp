#include "backend/process/layout.hpp"

#include <signal.h>

#include <new>
#include <utility>

namespace mproc::detail {
namespace {

constexpr std::size_t kRingBytes = std::size_t{1} << 20;  // each direction, each worker

std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

std::size_t header_bytes(std::size_t slots) {
  return align_up(align_up(sizeof(PoolShared), 64) + align_up(sizeof(SlotShared), 64) * slots, 4096);
}

}  // namespace

PoolMemory::PoolMemory(const std::vector<std::unique_ptr<Slot>>& slots)
    : size_(header_bytes(slots.size()) + 2 * kRingBytes * slots.size()), base_(os::map_shared_anonymous(size_)) {
  auto* base = static_cast<std::byte*>(base_);
  shared_ = new (base) PoolShared();
  std::byte* p = base + align_up(sizeof(PoolShared), 64);
  std::byte* data = base + header_bytes(slots.size());
  for (const auto& slot : slots) {
    slot->shared = new (p) SlotShared();
    p += align_up(sizeof(SlotShared), 64);
    slot->tasks = Ring(&slot->shared->task_header, data, kRingBytes, &slot->shared->task_bell);
    data += kRingBytes;
    slot->results = Ring(&slot->shared->result_header, data, kRingBytes, &shared_->doorbell);
    data += kRingBytes;
  }
}

PoolMemory::~PoolMemory() { os::unmap(base_, size_); }

Spawner::Spawner(PoolShared& pool, const Slots& slots, const PoolOptions& options)
    : pool_(pool), options_(options), parent_(os::getpid()), guard_(slots), memory_(options) {
  auto [r, w] = os::pipe();
  watchdog_read_ = std::move(r);
  watchdog_write_ = std::move(w);
  os::register_parent_only_fd(watchdog_write_.get());
  if (options_.output == Output::lines) relay_ = std::make_unique<OutputRelay>();
}

Spawner::~Spawner() { os::unregister_parent_only_fd(watchdog_write_.get()); }

void Spawner::spawn(Slot& slot) {
  slot.tasks.reset();
  slot.results.reset();
  slot.shared->task_bell.disarm();
  slot.shared->started_seq.store(0, std::memory_order_relaxed);
  slot.shared->claim.store(0, std::memory_order_relaxed);
  slot.shared->memory_failed_seq.store(0, std::memory_order_relaxed);
  slot.shared->memory_used.store(0, std::memory_order_relaxed);
  slot.dead.store(false);
  slot.chunks_sent = 0;
  slot.stalled = false;
  slot.progress_ns = kUnstamped;
  WorkerContext ctx{&slot, &pool_, &options_, parent_, watchdog_read_.get(), memory_.prepare(slot)};
  OutputRelay::WorkerEnds ends;  // the parent's copies close when this returns
  if (relay_) ends = relay_->open(slot.id);
  os::flush_stdio();
  pid_t pid = os::fork();
  if (pid == 0) {
    os::close_parent_only_fds();
    if (relay_) OutputRelay::attach(ends);
    run_worker(ctx);
  }
  slot.pid = pid;
  os::lead_process_group(pid);  // as the worker does itself: whichever runs first
  try {
    slot.pidfd = os::pidfd_open(pid);
  } catch (...) {
    os::kill_group(pid, SIGKILL);
    os::kill(pid, SIGKILL);
    os::reap(pid);
    throw;
  }
  slot.group->store(pid, std::memory_order_release);  // for the guard: the group exists now
  slot.alive = true;
}

}  // namespace mproc::detail
