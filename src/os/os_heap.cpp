// The shared heap's os wrappers: see os_heap.hpp.
#include "os/os_heap.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <string>

#include "os/os.hpp"
#include "os/os_testing.hpp"

namespace mproc::detail::os {

std::pair<void*, std::size_t> map_memfd_reserved(const char* label, std::size_t size, std::size_t min_size) {
  Fd fd = memfd_create(label);
  // memfd_create makes its file 0777 whatever the umask: the heap is this user's alone.
  if (::fchmod(fd.get(), 0600) == -1) throw_error(errno, "fchmod", std::to_string(fd.get()) + ", 0600");
  for (;;) {
    // A memfd is sparse: its size reserves nothing (and memfds are VM_NORESERVE: no commit charge).
    ftruncate(fd.get(), size);
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd.get(), 0);
    if (p != MAP_FAILED) {
      ::madvise(p, size, MADV_DONTDUMP);  // advice only: a failure costs nothing but a bigger core
      return {p, size};                   // fd closes here; the mapping keeps the file
    }
    if (errno != ENOMEM || size / 2 < min_size)
      throw_error(errno, "mmap", "memfd " + std::string(label) + ", MAP_SHARED|MAP_NORESERVE, " + std::to_string(size));
    size /= 2;
  }
}

void populate_pages(void* addr, std::size_t size) noexcept {
#ifdef MADV_POPULATE_WRITE
  if (size == 0 || injected_failure(testing::Call::populate)) return;
  const auto page = static_cast<std::uintptr_t>(page_size());
  const auto lo = reinterpret_cast<std::uintptr_t>(addr) & ~(page - 1);  // madvise wants it aligned
  const auto hi = reinterpret_cast<std::uintptr_t>(addr) + size;
  (void)::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE);
#else
  (void)addr;
  (void)size;
#endif
}

void advise_huge_pages(void* addr, std::size_t size) noexcept {
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  const auto lo = (reinterpret_cast<std::uintptr_t>(addr) + kHuge - 1) & ~(kHuge - 1);
  const auto hi = (reinterpret_cast<std::uintptr_t>(addr) + size) & ~(kHuge - 1);
  if (hi > lo) (void)::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
}

bool maps_range(const void* addr, std::size_t size) {
  std::FILE* f = std::fopen("/proc/self/maps", "re");
  if (!f) throw_error(errno, "fopen", "/proc/self/maps");
  auto start = reinterpret_cast<std::uintptr_t>(addr);
  std::uintptr_t covered = start;  // mappings are listed in address order
  std::uintmax_t lo = 0, hi = 0;
  char line[512];
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "%jx-%jx", &lo, &hi) != 2) continue;
    if (lo <= covered && covered < hi) covered = static_cast<std::uintptr_t>(hi);
  }
  std::fclose(f);
  return covered >= start + size;
}

}  // namespace mproc::detail::os
