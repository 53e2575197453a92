// shared_region.hpp: map_shared_region, the memory behind every unnamed shared object (Lock,
// Queue, Value, ...): a MAP_SHARED | MAP_ANONYMOUS mapping made before fork, which children
// inherit at the same address and which goes with the last process that maps it. Nothing named.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace mproc::detail {

// A zeroed shared region of at least bytes; unmapped when the last handle in this process goes.
std::shared_ptr<void> map_shared_region(std::size_t bytes);

// Regions are numbered as this process makes them, so that a process pool can tell what its
// workers share with it: the regions made before it forked them, still mapped. (One made later,
// perhaps at the same address, is not in their memory.)
// How many regions this process has made so far.
std::uint64_t shared_regions_made() noexcept;
// Whether [p, p + bytes) lies inside one region that is still mapped here and was among the
// first made_before this process made.
bool in_shared_region(const void* p, std::size_t bytes, std::uint64_t made_before) noexcept;

// Builds a T in a new shared region. T must not need its destructor run (atomics, PODs).
template <class T, class... Args>
std::shared_ptr<T> make_shared_state(Args&&... args) {
  std::shared_ptr<void> region = map_shared_region(sizeof(T));
  T* p = ::new (region.get()) T(std::forward<Args>(args)...);
  return std::shared_ptr<T>(std::move(region), p);
}

}  // namespace mproc::detail
