// The shared heap's allocator: see mproc/shared_heap.hpp for the design and why.
//
// Layout of the one mapping: [Header][kinds: a byte per granule][granules...]. A granule is
// 64 KiB. A small block (16 B to 16 KiB, 36 size classes) lies in a run of one granule cut into
// blocks of its class; a large block is 2^k granules. kinds[g] says what granule g starts: 0
// nothing yet, 1 + class for a run, kLargeBit | k for a large block. Granules are carved in order
// from the bottom (top is the next one); freed blocks go on a free list of their class (the
// list's links are in the free blocks themselves). When nothing free is large enough, free large
// blocks side by side are merged (coalesce), and those that reach the top go back to the carving.
//
// Everything below the mutex commits with one store, in an order where every prefix is a
// consistent heap: a process that dies mid-way (the robust mutex tells the next locker) leaves
// at worst a block or a run that nobody will hand out again. The byte counts in HeapStats are
// atomics updated after the commit; after such a death they may be off by that block.
#include "heap/heap.hpp"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "mproc/detail/region_registry.hpp"
#include "mproc/shared_heap.hpp"
#include "os/os.hpp"
#include "os/os_heap.hpp"
#include "os/os_ipc.hpp"

namespace mproc::detail::heap {
namespace {

constexpr std::size_t kGranule = std::size_t{64} << 10;
constexpr std::size_t kDefaultSize = std::size_t{64} << 30;
constexpr std::size_t kMinSize = std::size_t{64} << 20;
constexpr std::uint64_t kMagic = 0x6d70726f63686570;  // "mprochep"
constexpr std::uint8_t kLargeBit = 0x80;
constexpr unsigned kLargeClasses = 40;
// Free large blocks keep their pages up to this many bytes in all; past it a freed block's pages
// (but its first, which holds its link) go back to the kernel. Room for a 64 MB argument's frame
// and its result's (128 MiB blocks each), which an apply round trip reuses call after call, twice
// over: the next call may allocate before the last one's blocks are freed.
constexpr std::size_t kCacheBound = std::size_t{512} << 20;

constexpr std::array<std::uint32_t, 36> kSmall = {
    16,  32,   48,   64,   80,   96,   112,  128,  160,  192,  224,  256,  320,  384,  448,   512,   640,   768,
    896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192, 10240, 12288, 14336, 16384};

struct FreeBlock {
  FreeBlock* next;
  std::size_t resident;   // large blocks: bytes from the start that may be resident
  std::int64_t freed_ns;  // large blocks: when freed (CLOCK_MONOTONIC, the same in every process)
};

// Free large blocks idle this long give their pages back (release_idle), bound or not.
constexpr std::int64_t kIdleNs = 1'000'000'000;

std::int64_t monotonic_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct SmallClass {
  FreeBlock* free = nullptr;  // under mu
  std::byte* cur = nullptr;   // next never-used block of the current run; under mu
  std::byte* end = nullptr;   // the current run's end (nullptr: none); under mu
};

struct Header {
  std::uint64_t magic = kMagic;
  std::size_t granules = 0;   // how many the mapping holds
  std::byte* base = nullptr;  // granule 0
  pthread_mutex_t mu;
  std::size_t top = 0;  // granules carved so far; under mu
  std::array<SmallClass, kSmall.size()> small{};
  std::array<FreeBlock*, kLargeClasses> large{};  // under mu
  std::size_t cached = 0;                         // resident bytes of free large blocks; under mu
  std::atomic<std::size_t> mapped{0};
  std::atomic<std::size_t> in_use{0};
  std::atomic<std::uint64_t> releases{0};  // how many times pages went back to the kernel
};

struct Heap {
  Header* h = nullptr;
  std::uint8_t* kinds = nullptr;
  std::byte* begin = nullptr;  // the mapping
  std::size_t size = 0;
};

std::size_t heap_size_wanted() {
  if (const char* s = std::getenv("MPROC_HEAP_SIZE")) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(s, &end, 10);
    if (end != s && v >= kMinSize) return static_cast<std::size_t>(v);
  }
  return kDefaultSize;
}

Heap make_heap() {
  auto [p, size] = os::map_memfd_reserved("mproc-heap", heap_size_wanted(), kMinSize);
  Heap heap;
  heap.begin = static_cast<std::byte*>(p);
  heap.size = size;
  heap.h = ::new (p) Header;
  heap.kinds = reinterpret_cast<std::uint8_t*>(heap.begin + sizeof(Header));
  std::size_t meta = sizeof(Header) + size / kGranule;  // an upper bound on the kinds table
  std::size_t first = (meta + kGranule - 1) / kGranule * kGranule;
  heap.h->base = heap.begin + first;
  heap.h->granules = (size - first) / kGranule;
  os::robust_mutex_init(&heap.h->mu, false);
  add_shared_region(p, size);  // so a process pool made after it reads its items in place
  return heap;
}

// The heap once mapped here (or inherited), else nullptr: for those who must not map it.
std::atomic<Heap*> mapped_heap{nullptr};

// Mapped once per program, by the first process that needs it before any fork; inherited.
Heap& the_heap() {
  static Heap heap = [] {
    Heap made = make_heap();
    return made;
  }();
  mapped_heap.store(&heap, std::memory_order_release);
  return heap;
}

class Lock {
 public:
  explicit Lock(Header& h) : h_(h) {
    // owner_died: every step below commits with one store, so the heap is consistent as it is.
    (void)os::robust_mutex_lock(&h_.mu, std::nullopt);
  }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  ~Lock() { os::robust_mutex_unlock(&h_.mu); }

 private:
  Header& h_;
};

unsigned small_class(std::size_t size) {
  return static_cast<unsigned>(std::lower_bound(kSmall.begin(), kSmall.end(), size) - kSmall.begin());
}

// Lists the free block of 2^k granules at granule g, whose first resident bytes may be
// resident. Under mu. The push commits.
void list_large(Heap& heap, std::size_t g, unsigned k, std::size_t resident, std::int64_t freed_ns) {
  Header& h = *heap.h;
  auto* b = reinterpret_cast<FreeBlock*>(h.base + g * kGranule);
  heap.kinds[g] = static_cast<std::uint8_t>(kLargeBit | k);
  b->resident = resident;
  b->freed_ns = freed_ns;
  b->next = h.large[k];
  h.large[k] = b;  // the commit
  h.cached += resident;
}

// A free large block as coalesce sees it.
struct Free {
  std::size_t g;  // its first granule
  unsigned k;     // 2^k granules
  std::size_t resident;
  std::int64_t freed_ns;
  [[nodiscard]] std::size_t end() const noexcept { return g + (std::size_t{1} << k); }
};

// Gives [p, p + bytes) back to the kernel, which unmaps it in every process (see populate). Under mu.
void release_pages(Header& h, void* p, std::size_t bytes) noexcept {
  os::release_shared_pages(p, bytes);
  h.releases.fetch_add(1, std::memory_order_release);
}

// Merges the free large blocks that lie side by side (the heap is carved in power-of-two blocks
// that are never joined otherwise: a heap cut into small blocks and freed could not hand out a
// large one). Each run of two or more gives its pages back and is listed again as the fewest
// power-of-two blocks; a run that reaches the top lowers the top instead, for carving anew.
// Under mu, when nothing free is large enough. The lists are emptied first, so a death midway
// loses the blocks not yet listed again, and hands out nothing twice.
void coalesce(Heap& heap) {
  Header& h = *heap.h;
  std::vector<Free> blocks;
  for (unsigned k = 0; k < kLargeClasses; ++k)
    for (FreeBlock* b = h.large[k]; b; b = b->next)
      blocks.push_back(
          {static_cast<std::size_t>(reinterpret_cast<std::byte*>(b) - h.base) / kGranule, k, b->resident, b->freed_ns});
  std::sort(blocks.begin(), blocks.end(), [](const Free& a, const Free& b) { return a.g < b.g; });
  for (auto& list : h.large) list = nullptr;
  h.cached = 0;
  const std::size_t page = os::page_size();
  for (std::size_t i = 0; i < blocks.size();) {
    std::size_t j = i + 1;
    while (j < blocks.size() && blocks[j].g == blocks[j - 1].end()) ++j;
    const std::size_t start = blocks[i].g, end = blocks[j - 1].end();
    if (j == i + 1 && end != h.top) {  // alone: as it was
      list_large(heap, start, blocks[i].k, blocks[i].resident, blocks[i].freed_ns);
      i = j;
      continue;
    }
    for (std::size_t m = i; m < j; ++m) {
      release_pages(h, h.base + blocks[m].g * kGranule, blocks[m].resident);
      h.mapped.fetch_sub(blocks[m].resident, std::memory_order_relaxed);
      heap.kinds[blocks[m].g] = 0;  // inside a larger block now
    }
    if (end == h.top) {
      h.top = start;
    } else {
      const std::int64_t now = monotonic_ns();
      for (std::size_t g = start; g < end;) {
        const auto k = std::min(static_cast<unsigned>(std::bit_width(end - g) - 1), kLargeClasses - 1);
        list_large(heap, g, k, page, now);
        h.mapped.fetch_add(page, std::memory_order_relaxed);
        g += std::size_t{1} << k;
      }
    }
    i = j;
  }
}

// The first granule of n (a power of two) cut from the top or from a larger free block, marked
// kind; nullptr when neither has room. Under mu.
std::byte* carve_once(Heap& heap, std::size_t n, std::uint8_t kind) {
  Header& h = *heap.h;
  std::size_t g = h.top;
  if (n <= h.granules - g) {
    heap.kinds[g] = kind;  // harmless until top moves past it
    h.top = g + n;         // the commit
    h.mapped.fetch_add(n * kGranule, std::memory_order_relaxed);
    return h.base + g * kGranule;
  }
  // The top is spent: split the least free block that is large enough, buddy-fashion. Taking it
  // off its list commits; each half given back after commits on its own (a death in between
  // loses the halves not yet given back, nothing else).
  auto j = static_cast<unsigned>(std::countr_zero(n));
  unsigned k = j;
  while (k < kLargeClasses && !h.large[k]) ++k;
  if (k == kLargeClasses) return nullptr;
  FreeBlock* b = h.large[k];
  const std::size_t bytes = kGranule << k;
  const bool whole = b->resident == bytes;  // else only its first page may be resident
  h.large[k] = b->next;
  h.cached -= b->resident;
  h.mapped.fetch_add(bytes - b->resident, std::memory_order_relaxed);
  g = static_cast<std::size_t>(reinterpret_cast<std::byte*>(b) - h.base) / kGranule;
  const std::size_t page = os::page_size();
  for (unsigned i = k; i-- > j;) {
    std::size_t hg = g + (std::size_t{1} << i);
    auto* half = reinterpret_cast<FreeBlock*>(h.base + hg * kGranule);
    const std::size_t half_bytes = kGranule << i;
    heap.kinds[hg] = static_cast<std::uint8_t>(kLargeBit | i);
    half->resident = whole ? half_bytes : page;
    half->freed_ns = b->freed_ns;
    half->next = h.large[i];
    h.large[i] = half;  // the commit
    h.cached += half->resident;
    h.mapped.fetch_sub(half_bytes - half->resident, std::memory_order_relaxed);
  }
  heap.kinds[g] = kind;
  return h.base + g * kGranule;
}

// A granule-aligned stretch of n granules (a power of two), its first marked kind: from the top
// while the heap has room there, else cut from a larger free block, else from free blocks merged
// (coalesce). Under mu. Throws std::bad_alloc when none of them has room.
std::byte* carve(Heap& heap, std::size_t n, std::uint8_t kind) {
  if (std::byte* p = carve_once(heap, n, kind)) return p;
  coalesce(heap);
  if (std::byte* p = carve_once(heap, n, kind)) return p;
  throw std::bad_alloc();
}

void* allocate_small(Heap& heap, unsigned c) {
  Header& h = *heap.h;
  SmallClass& sc = h.small[c];
  const std::size_t size = kSmall[c];
  std::byte* fresh = nullptr;  // a run begun by this call
  std::byte* p = nullptr;
  {
    Lock hold(h);
    if (FreeBlock* b = sc.free) {
      sc.free = b->next;
      h.in_use.fetch_add(size, std::memory_order_relaxed);
      return b;
    }
    if (!sc.end || static_cast<std::size_t>(sc.end - sc.cur) < size) {
      fresh = carve(heap, 1, static_cast<std::uint8_t>(1 + c));
      sc.end = nullptr;  // cur and end change one at a time: no moment where cur + size <= end lies
      sc.cur = fresh;
      sc.end = fresh + kGranule;
    }
    p = sc.cur;
    sc.cur = p + size;
    h.in_use.fetch_add(size, std::memory_order_relaxed);
  }
  // A run fills from its start: its pages are committed in one call rather than faulted in one
  // by one (outside the lock: it is advice, and others may already use the run meanwhile).
  if (fresh) os::populate_pages(fresh, kGranule);
  return p;
}

void* allocate_large(Heap& heap, std::size_t size) {
  Header& h = *heap.h;
  std::size_t granules = std::bit_ceil((size + kGranule - 1) / kGranule);
  auto k = static_cast<unsigned>(std::countr_zero(granules));
  if (k >= kLargeClasses) throw std::bad_alloc();
  const std::size_t bytes = granules * kGranule;
  Lock hold(h);
  if (FreeBlock* b = h.large[k]) {
    std::size_t resident = b->resident;
    h.large[k] = b->next;
    h.cached -= resident;
    h.mapped.fetch_add(bytes - resident, std::memory_order_relaxed);
    h.in_use.fetch_add(bytes, std::memory_order_relaxed);
    return b;
  }
  void* p = carve(heap, granules, static_cast<std::uint8_t>(kLargeBit | k));
  h.in_use.fetch_add(bytes, std::memory_order_relaxed);
  return p;
}

// When release_idle last looked (any process): it looks at most every tenth of kIdleNs.
std::atomic<std::int64_t> last_idle_look{0};

}  // namespace

void release_idle() noexcept {
  Heap* heap = mapped_heap.load(std::memory_order_acquire);
  if (!heap) return;
  const std::int64_t now = monotonic_ns();
  std::int64_t last = last_idle_look.load(std::memory_order_relaxed);
  if (now - last < kIdleNs / 10 || !last_idle_look.compare_exchange_strong(last, now)) return;
  Header& h = *heap->h;
  const std::size_t page = os::page_size();
  Lock hold(h);
  for (unsigned k = 0; k < kLargeClasses; ++k) {
    for (FreeBlock* b = h.large[k]; b; b = b->next) {
      if (b->resident <= page || now - b->freed_ns < kIdleNs) continue;
      // Pages first, then the count: a death in between leaves a block counted as resident
      // that is not, which the next look releases again (harmless).
      release_pages(h, reinterpret_cast<std::byte*>(b) + page, b->resident - page);
      h.cached -= b->resident - page;
      h.mapped.fetch_sub(b->resident - page, std::memory_order_relaxed);
      b->resident = page;
    }
  }
}

namespace {

// The ranges of the heap this process populated lately. They stay mapped here while the heap
// gives no pages back (that unmaps them in every process) and in this process only: a child
// forked since maps none of its shared pages until it touches them. Guarded by
// populated_holder, the pid of the process whose thread holds it (0: none); a pid not this
// process's was held by another thread at a fork, and the child takes it over.
struct Populated {
  pid_t pid = 0;
  std::uint64_t releases = 0;
  std::array<std::pair<std::uintptr_t, std::uintptr_t>, 8> ranges{};
  unsigned next = 0;
};
Populated populated;
std::atomic<pid_t> populated_holder{0};

// Whether [lo, hi) is to be populated: not when it lies in a range populated lately. Remembered
// as populated when it is to be.
bool populate_wanted(Header& h, std::uintptr_t lo, std::uintptr_t hi) noexcept {
  const pid_t pid = os::getpid();
  pid_t holder = 0;
  // A failed exchange leaves the holder seen in holder: 0 after a spurious failure, or a pid not
  // this process's, which the next exchange takes it over from.
  while (!populated_holder.compare_exchange_weak(holder, pid, std::memory_order_acquire))
    if (holder == pid) return true;  // another thread of this process looks: populate, unremembered
  const std::uint64_t releases = h.releases.load(std::memory_order_acquire);
  if (populated.pid != pid || populated.releases != releases) populated = Populated{pid, releases, {}, 0};
  bool wanted = true;
  for (const auto& [from, to] : populated.ranges) wanted = wanted && !(from <= lo && hi <= to);
  if (wanted) {
    populated.ranges[populated.next] = {lo, hi};
    populated.next = (populated.next + 1) % populated.ranges.size();
  }
  populated_holder.store(0, std::memory_order_release);
  return wanted;
}

}  // namespace

void populate(const void* p, std::size_t bytes) noexcept {
  Heap* heap = mapped_heap.load(std::memory_order_acquire);
  const auto lo = reinterpret_cast<std::uintptr_t>(p);
  if (heap && bytes && populate_wanted(*heap->h, lo, lo + bytes))
    os::populate_pages(const_cast<void*>(p), bytes);  // writable: a block read now may be written next
}

void* allocate(std::size_t size, std::size_t align) {
  Heap& heap = the_heap();
  if (align > kGranule) throw std::bad_alloc();
  if (size == 0) size = 1;
  if (align > 16 && size <= kSmall.back()) {
    // A block of a small class lies at a multiple of its size from its run's start: a class whose
    // size is a multiple of align keeps the alignment (runs are granule-aligned).
    size = (size + align - 1) / align * align;
    unsigned c = small_class(size);
    while (c < kSmall.size() && kSmall[c] % align != 0) ++c;
    if (c < kSmall.size()) return allocate_small(heap, c);
    size = kSmall.back() + 1;
  }
  if (size <= kSmall.back()) return allocate_small(heap, small_class(size));
  return allocate_large(heap, size);
}

void deallocate(void* p) noexcept {
  if (!p) return;
  Heap& heap = the_heap();
  Header& h = *heap.h;
  auto* at = static_cast<std::byte*>(p);
  if (at < h.base || at >= h.base + h.granules * kGranule) std::abort();  // not the heap's: never follow it
  std::size_t g = static_cast<std::size_t>(at - h.base) / kGranule;
  Lock hold(h);
  std::uint8_t kind = heap.kinds[g];
  if (kind == 0 || g >= h.top) std::abort();
  if (kind & kLargeBit) {
    unsigned k = kind & ~kLargeBit;
    const std::size_t bytes = kGranule << k;
    auto* b = reinterpret_cast<FreeBlock*>(h.base + g * kGranule);
    std::size_t resident = bytes;
    if (h.cached + bytes > kCacheBound) {
      const std::size_t page = os::page_size();
      release_pages(h, reinterpret_cast<std::byte*>(b) + page, bytes - page);
      resident = page;
    }
    b->resident = resident;
    b->freed_ns = monotonic_ns();
    b->next = h.large[k];
    h.large[k] = b;  // the commit
    h.cached += resident;
    h.mapped.fetch_sub(bytes - resident, std::memory_order_relaxed);
    h.in_use.fetch_sub(bytes, std::memory_order_relaxed);
    return;
  }
  unsigned c = kind - 1u;
  const std::size_t size = kSmall[c];
  std::byte* run = h.base + g * kGranule;
  auto* b = reinterpret_cast<FreeBlock*>(run + static_cast<std::size_t>(at - run) / size * size);
  SmallClass& sc = h.small[c];
  b->next = sc.free;
  sc.free = b;  // the commit
  h.in_use.fetch_sub(size, std::memory_order_relaxed);
}

}  // namespace mproc::detail::heap

namespace mproc {
namespace {

std::atomic<std::uint64_t> maps_in_place{0};
std::atomic<std::uint64_t> maps_copied{0};
std::atomic<std::uint64_t> results_placed{0};

class SharedHeapResource final : public std::pmr::memory_resource {
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return detail::heap::allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t, std::size_t) override { detail::heap::deallocate(p); }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

}  // namespace

std::pmr::memory_resource* shared_resource() {
  // A static of the library: at the same address in every process forked from the program.
  static SharedHeapResource resource;
  detail::ensure_heap();
  return &resource;
}

HeapStats heap_stats() noexcept {
  HeapStats s;
  s.maps_in_place = maps_in_place.load(std::memory_order_relaxed);
  s.maps_copied = maps_copied.load(std::memory_order_relaxed);
  s.results_placed = results_placed.load(std::memory_order_relaxed);
  if (auto* heap = detail::heap::mapped_heap.load(std::memory_order_acquire)) {
    s.reserved = heap->h->granules * detail::heap::kGranule;
    s.mapped = heap->h->mapped.load(std::memory_order_relaxed);
    s.in_use = heap->h->in_use.load(std::memory_order_relaxed);
  }
  return s;
}

bool in_shared_heap(const void* p, std::size_t bytes) noexcept {
  auto* heap = detail::heap::mapped_heap.load(std::memory_order_acquire);
  if (!heap) return false;
  auto at = reinterpret_cast<std::uintptr_t>(p);
  auto lo = reinterpret_cast<std::uintptr_t>(heap->h->base);
  auto hi = lo + heap->h->granules * detail::heap::kGranule;
  return at >= lo && at < hi && bytes <= hi - at;
}

namespace detail {

void ensure_heap() { (void)heap::the_heap(); }

void note_map(bool in_place) noexcept {
  (in_place ? maps_in_place : maps_copied).fetch_add(1, std::memory_order_relaxed);
}

void note_results_placed() noexcept { results_placed.fetch_add(1, std::memory_order_relaxed); }

}  // namespace detail
}  // namespace mproc
