// heap.hpp: the shared heap's allocator, inside the library (src/heap/). The public face is
// mproc/shared_heap.hpp; this is what the resource, the stats and the tests below it call.
#pragma once

#include <cstddef>

namespace mproc::detail::heap {

// size bytes aligned to align (a power of two, at most 64 KiB) from the heap, mapping it first if
// need be. Throws std::bad_alloc when the heap is exhausted (or align is larger).
void* allocate(std::size_t size, std::size_t align);
// Gives back the block that p points into (any process may free a block any process
// allocated). p must come from allocate and not be freed yet; nullptr is ignored.
void deallocate(void* p) noexcept;
// Gives back to the kernel the pages of free large blocks idle for a second or more (the heap
// keeps up to 512 MiB of free blocks' pages for reuse, and none once idle). Cheap when there is
// nothing to do, and looks at most ten times a second: for a pool's idle moments.
void release_idle() noexcept;
// Maps [p, p + bytes), part of a block about to be written or read whole, into this process's
// page tables now, in one call (os::populate_pages) rather than by a fault per page: on the VM
// here 64 MB of a fresh memfd took 29 ms populated (190 ms touched page by page), and 64 MB that
// another process made 6 ms (100 ms read page by page). Skips a range this process populated
// lately, unless the heap has given pages back to the kernel since: populating what is mapped
// already still costs 2.5-5 ms per 64 MB. Advice only.
void populate(const void* p, std::size_t bytes) noexcept;

}  // namespace mproc::detail::heap
