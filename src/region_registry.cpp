// The shared regions this process has mapped: see mproc/detail/region_registry.hpp.
#include "mproc/detail/region_registry.hpp"

#include <cstdint>
#include <map>
#include <mutex>

#include "os/os.hpp"

namespace mproc::detail {
namespace {

// The regions mapped in this process, by start address, each with its number in order of
// making. Inherited by forked children along with the mappings themselves; the lock is held
// across fork() so that a child never inherits it taken.
struct Registry {
  struct Entry {
    std::uintptr_t end;
    std::uint64_t number;
  };
  std::mutex mu;
  std::map<std::uintptr_t, Entry> regions;  // guarded by mu
  std::uint64_t made = 0;                   // guarded by mu

  Registry() {
    os::at_fork([] { registry().mu.lock(); }, [] { registry().mu.unlock(); }, [] { registry().mu.unlock(); });
  }
  static Registry& registry() {
    static auto* r = new Registry;  // never destroyed: regions may be unmapped during exit
    return *r;
  }
};

}  // namespace

void add_shared_region(const void* start, std::size_t size) {
  auto at = reinterpret_cast<std::uintptr_t>(start);
  Registry& r = Registry::registry();
  std::scoped_lock hold(r.mu);
  r.regions[at] = {at + size, r.made++};
}

void remove_shared_region(const void* start) noexcept {
  Registry& r = Registry::registry();
  std::scoped_lock hold(r.mu);
  r.regions.erase(reinterpret_cast<std::uintptr_t>(start));
}

std::uint64_t shared_regions_made() noexcept {
  Registry& r = Registry::registry();
  std::scoped_lock hold(r.mu);
  return r.made;
}

bool in_shared_region(const void* p, std::size_t bytes, std::uint64_t made_before) noexcept {
  auto start = reinterpret_cast<std::uintptr_t>(p);
  Registry& r = Registry::registry();
  std::scoped_lock hold(r.mu);
  auto it = r.regions.upper_bound(start);
  if (it == r.regions.begin()) return false;
  --it;
  return it->second.number < made_before && start < it->second.end && bytes <= it->second.end - start;
}

}  // namespace mproc::detail
