#include "backend/process/guard.hpp"

#include <utility>
#include <vector>

#include "os/os_ipc.hpp"

namespace mproc::detail {

PoolGuard::PoolGuard(const Slots& slots) {
  std::vector<const std::atomic<pid_t>*> groups;
  for (const auto& s : slots) groups.push_back(&s->shared->group);
  auto [r, w] = os::pipe();
  os::register_parent_only_fd(w.get());
  try {
    process_.emplace(r.get(), groups);
  } catch (...) {
    os::unregister_parent_only_fd(w.get());
    throw;
  }
  write_ = std::move(w);  // the read end closes here: the guard has its own
}

void PoolGuard::end() noexcept {
  process_.reset();
  if (!write_) return;
  os::unregister_parent_only_fd(write_.get());
  write_.reset();
}

}  // namespace mproc::detail
