// region_registry.hpp: the shared regions this process has mapped, numbered in the order it made
// them, so that a process pool can tell what its workers share with it: the regions made before
// it forked them, still mapped. (One made later, perhaps at the same address, is not in their
// memory.) The shared heap (src/heap/heap.cpp) records itself, before any pool forks; the process
// backend asks.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mproc::detail {

// Records the region just mapped at [start, start + size) as the next one made.
void add_shared_region(const void* start, std::size_t size);
// Forgets the region that starts at start; before it is unmapped.
void remove_shared_region(const void* start) noexcept;

// How many regions this process has made so far.
std::uint64_t shared_regions_made() noexcept;
// Whether [p, p + bytes) lies inside one region that is still mapped here and was among the
// first made_before this process made.
bool in_shared_region(const void* p, std::size_t bytes, std::uint64_t made_before) noexcept;

}  // namespace mproc::detail
