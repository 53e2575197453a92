/// @file
/// shared_heap.hpp: shared_resource, heap_stats, HeapStats, in_shared_heap — memory that every
/// process forked from the program maps at the same address, at any time, and a
/// std::pmr::memory_resource over it, so that standard pmr containers live there whole.
///
/// Why this design. The heap is one memfd (close-on-exec, mode 0600, nothing in /dev/shm), made
/// sparse and large (64 GiB, or MPROC_HEAP_SIZE bytes; halved while the system refuses), mapped
/// whole MAP_SHARED | MAP_NORESERVE once, and its fd closed at once: the file lives exactly as long
/// as some process maps it, so it goes with the last process and leaves no fd behind. Because the
/// whole range is mapped before the first fork, every pool worker, replacement and Process child
/// inherits it at the same address, and memory that any of them adds later is simply pages of the
/// same file: they reach every other process on first touch, with no segment table, no fd passing
/// and no fault handler. Pages are committed on first touch only. Free large blocks keep their
/// pages for reuse up to 512 MiB in all; past that, and once idle for a second (a process pool
/// looks when it has nothing to do), they give them back (MADV_REMOVE) for every process at once.
///
/// A process pool's task and result frames of 256 KiB or more cross through the heap: written
/// once into a block, only its address goes through the channel (mproc/detail/wire.hpp).
/// The range is mapped lazily — on the first use of the heap, and by every Pool and Process before
/// it forks — not by a static initializer at load: a program that never forks nor uses the heap
/// pays nothing, and a program that sets RLIMIT_AS itself (which counts reserved address space, as
/// a Queue's reservation already shows) is only affected once it uses mproc's processes. Memory
/// limits for workers therefore must not use RLIMIT_AS (PoolOptions::memory_limit does not).
///
/// The allocator keeps its metadata in the heap itself and serialises on one robust,
/// process-shared mutex: size classes (16 B to 16 KiB) cut from 64 KiB runs, and larger blocks of
/// power-of-two sizes, each kind with a free list; when no free block is large enough, free large
/// blocks side by side are merged first. Every change to the metadata commits with one
/// store, so a process that dies at any point while allocating or freeing leaves it consistent
/// (at worst a block is lost); the next locker is told the owner died and goes on. A block may be
/// freed by any process. Exhausted: std::bad_alloc.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <ranges>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace mproc {

/// What the shared heap holds, in bytes, as this process sees it; and how this process's pool
/// maps went. Safe to call from any thread and process; the figures are a snapshot.
struct HeapStats {
  std::size_t reserved = 0;  ///< address space reserved for the heap (nothing committed by it)
  std::size_t mapped = 0;    ///< bytes carved into blocks so far, less those given back to the kernel
  std::size_t in_use = 0;    ///< bytes in blocks allocated and not yet freed, by any process
  /// map/starmap/imap calls of a process Pool in this process that read their items in place
  /// (only their addresses crossed).
  std::uint64_t maps_in_place = 0;
  /// map/starmap/imap calls of a process Pool in this process whose items were copied to the
  /// workers (not in the heap or a shared region made before the pool, or of a type that cannot
  /// be read in place).
  std::uint64_t maps_copied = 0;
  /// map_into/starmap_into calls of a process Pool in this process whose results its workers
  /// wrote straight into the caller's memory in the heap (nothing crossed back), and map/starmap
  /// calls read in place whose many results its workers wrote into a block of the heap, which
  /// the call copied into the vector it returns.
  std::uint64_t results_placed = 0;
};

/// The shared heap as a std::pmr::memory_resource: the same object at the same address in every
/// process forked from the program, so a pmr container made in one process may be read, grown or
/// freed in another (synchronising access is the owner's job, as with any shared data). Thread-
/// and process-safe. Maps the heap on first use. Throws std::bad_alloc when exhausted.
/// A process Pool's map, starmap and their async forms read items that lie in the heap in place
/// (see HeapStats::maps_in_place): leave them unchanged until the call's results are ready.
/// imap copies its items.
[[nodiscard]] std::pmr::memory_resource* shared_resource();

/// The heap's figures now (see HeapStats).
[[nodiscard]] HeapStats heap_stats() noexcept;

/// Whether [p, p + bytes) lies inside the shared heap.
[[nodiscard]] bool in_shared_heap(const void* p, std::size_t bytes) noexcept;

namespace detail {

/// Maps the heap if this process has not yet: before a fork, so the child inherits it.
void ensure_heap();
/// Counts a process pool's map as read in place or copied (HeapStats::maps_in_place, maps_copied).
void note_map(bool in_place) noexcept;
/// Counts a process pool's call whose results the workers write in place (results_placed).
void note_results_placed() noexcept;

/// Whether a value of type T whose own bytes lie in the heap can be read in place by another
/// process: trivially copyable, or a pmr vector or string (of such values), or a tuple, pair or
/// array of such. Whether a given value's memory is the heap's is read_in_place_ok's job.
template <class T>
struct heap_readable : std::bool_constant<std::is_trivially_copyable_v<T>> {};
/// A pmr vector: its elements are built with its memory resource (uses-allocator construction).
template <class T>
struct heap_readable<std::vector<T, std::pmr::polymorphic_allocator<T>>> : heap_readable<T> {};
/// A pmr string.
template <class C, class Tr>
struct heap_readable<std::basic_string<C, Tr, std::pmr::polymorphic_allocator<C>>> : std::true_type {};
/// A tuple of heap-readable values.
template <class... T>
struct heap_readable<std::tuple<T...>> : std::conjunction<heap_readable<T>...> {};
/// A pair of heap-readable values.
template <class A, class B>
struct heap_readable<std::pair<A, B>> : std::conjunction<heap_readable<A>, heap_readable<B>> {};
/// An array of heap-readable values.
template <class T, std::size_t N>
struct heap_readable<std::array<T, N>> : heap_readable<T> {};

/// Whether x, whose own bytes lie in the heap, has every byte it refers to there too. Only the
/// outermost pmr containers are looked at: their elements share their resource.
template <class T>
bool read_in_place_ok(const T& x, const std::pmr::memory_resource* heap) noexcept {
  if constexpr (std::is_trivially_copyable_v<T>) {
    return true;
  } else if constexpr (requires { x.get_allocator().resource(); }) {
    return x.get_allocator().resource() == heap;
  } else {
    return std::apply([heap](const auto&... part) { return (read_in_place_ok(part, heap) && ...); }, x);
  }
}

/// Whether a T made by a pmr container with its own resource refers to that resource only:
/// polymorphic_allocator builds a container's elements with the container's resource
/// (uses-allocator construction), and an element keeps it through assignment (it never
/// propagates), so pmr containers, strings, pairs and tuples of such inherit it all the way
/// down. An array's elements do not (an array takes no allocator).
template <class T>
struct inherits_resource : std::bool_constant<std::is_trivially_copyable_v<T>> {};
template <class T>
struct inherits_resource<std::vector<T, std::pmr::polymorphic_allocator<T>>> : inherits_resource<T> {};
template <class C, class Tr>
struct inherits_resource<std::basic_string<C, Tr, std::pmr::polymorphic_allocator<C>>> : std::true_type {};
template <class... T>
struct inherits_resource<std::tuple<T...>> : std::conjunction<inherits_resource<T>...> {};
template <class A, class B>
struct inherits_resource<std::pair<A, B>> : std::conjunction<inherits_resource<A>, inherits_resource<B>> {};

/// Whether range is a pmr container on the heap whose items inherit its resource: then every
/// item refers only to the heap, with no need to look at each (all_in_shared_memory).
template <class Range>
bool items_inherit_heap(const Range& range) {
  using Item = std::ranges::range_value_t<Range>;
  if constexpr (requires { range.get_allocator().resource(); } && inherits_resource<Item>::value)
    return range.get_allocator().resource() == shared_resource();
  else
    return false;
}

/// Whether every item's heap-readable parts refer only to the heap (the items' own bytes are the
/// caller's to check): a map reads such items in place.
template <class Item>
bool all_in_shared_memory(std::span<const Item> items) {
  if constexpr (std::is_trivially_copyable_v<Item>) {
    return true;
  } else {
    const std::pmr::memory_resource* heap = shared_resource();
    return std::ranges::all_of(items, [heap](const Item& x) { return read_in_place_ok(x, heap); });
  }
}

}  // namespace detail
}  // namespace mproc
