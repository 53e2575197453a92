// os_heap.hpp: the os wrappers of the shared heap (src/heap/): one memfd mapped whole, once, at
// an address every process forked afterwards inherits. Same rules as os.hpp.
#pragma once

#include <cstddef>
#include <utility>

namespace mproc::detail::os {

// Maps a fresh memfd (close-on-exec, mode 0600, sized up to size bytes and sparse) whole,
// MAP_SHARED | MAP_NORESERVE, and closes the fd: the file then lives exactly as long as some
// process maps it, and nothing is left in /dev/shm or in the fd table. Pages are committed on
// first touch only. Halves the size while the system refuses it, down to min_size. Returns the
// start and the size mapped.
std::pair<void*, std::size_t> map_memfd_reserved(const char* label, std::size_t size, std::size_t min_size);

// Commits the pages of [addr, addr + size) writable now (MADV_POPULATE_WRITE), the partial pages
// at either end included: one call instead of a fault per page, for memory about to be written
// or read page after page. Advice only: where the kernel cannot (before Linux 5.14: EINVAL) or
// will not (short of memory, a signal pending), the pages fault in on first touch as usual.
void populate_pages(void* addr, std::size_t size) noexcept;

// Asks for huge pages in the 2 MiB-aligned part of [addr, addr + size) of private anonymous
// memory not yet touched (MADV_HUGEPAGE): a first touch then faults 2 MiB at a time, not 4 KiB
// (on a VM here, 64 MB fresh: 430 ms by 4 KiB pages, 15-30 ms by huge pages). Advice only.
void advise_huge_pages(void* addr, std::size_t size) noexcept;

// Whether the calling process still maps [addr, addr + size) (a child that unmapped it, or a
// program that never made it): for tests. Reads /proc/self/maps.
bool maps_range(const void* addr, std::size_t size);

}  // namespace mproc::detail::os
