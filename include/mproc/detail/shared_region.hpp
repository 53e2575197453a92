// shared_region.hpp: map_shared_region, the memory behind every unnamed shared object (Lock,
// Queue, Value, ...): a MAP_SHARED | MAP_ANONYMOUS mapping made before fork, which children
// inherit at the same address and which goes with the last process that maps it. Nothing named.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace mproc::detail {

// A zeroed shared region of at least bytes; unmapped when the last handle in this process goes.
// Recorded in the region registry (region_registry.hpp) while mapped.
std::shared_ptr<void> map_shared_region(std::size_t bytes);

// Builds a T in a new shared region. T must not need its destructor run (atomics, PODs).
template <class T, class... Args>
std::shared_ptr<T> make_shared_state(Args&&... args) {
  std::shared_ptr<void> region = map_shared_region(sizeof(T));
  T* p = ::new (region.get()) T(std::forward<Args>(args)...);
  return std::shared_ptr<T>(std::move(region), p);
}

}  // namespace mproc::detail
