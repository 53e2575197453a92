// job_allocator.hpp: JobAllocator — an allocator that gives a job a heap block of at least a given size,
// for the process backend, whose jobs must stay out of glibc's fastbins.
#pragma once

#include <algorithm>
#include <cstddef>
#include <new>

namespace mproc::detail {

// Allocates a job together with its shared_ptr counts (allocate_shared) in a block of at least
// MinBytes. A process pool asks for more than glibc's largest fastbin chunk (128 bytes): its
// apply_async keeps hundreds of thousands of jobs, all freed at once when their results go, and
// glibc consolidates a fastbin that long whenever the top of its heap runs short (apply_async
// x300000 took 1.0-1.5 us per task instead of 0.6-0.7, bench_pool). A thread pool's jobs stay
// small, and are reused hot from the fastbins (its empty tasks cost 20 % less than in 144 bytes).
template <class T, std::size_t MinBytes>
struct JobAllocator {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = JobAllocator<U, MinBytes>;
  };

  JobAllocator() = default;
  template <class U>
  JobAllocator(const JobAllocator<U, MinBytes>&) noexcept {}  // implicit: allocate_shared rebinds it

  T* allocate(std::size_t n) {
    if constexpr (alignof(T) > __STDCPP_DEFAULT_NEW_ALIGNMENT__)
      return static_cast<T*>(::operator new(bytes(n), std::align_val_t(alignof(T))));
    else
      return static_cast<T*>(::operator new(bytes(n)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if constexpr (alignof(T) > __STDCPP_DEFAULT_NEW_ALIGNMENT__)
      ::operator delete(p, bytes(n), std::align_val_t(alignof(T)));
    else
      ::operator delete(p, bytes(n));
  }
  friend bool operator==(const JobAllocator&, const JobAllocator&) noexcept { return true; }

 private:
  static std::size_t bytes(std::size_t n) noexcept { return std::max(n * sizeof(T), MinBytes); }
};

}  // namespace mproc::detail
