// buffer.hpp: Writer, a growable byte buffer that encoding appends to, and Reader, a
// bounds-checked view that decoding consumes. Reader never reads past its end: a short read
// throws SerializationError.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "mproc/errors.hpp"

namespace mproc::detail {

// Frames of this many bytes or more cross between a process pool and its workers through the
// shared heap, not through a ring (a Writer told to spill_to_heap grows into the heap past it).
// Below it the ring wins: bench_heap's BM_ApplyBytes measures both sides of it.
[[nodiscard]] std::size_t heap_spill_bytes() noexcept;
// For benchmarks and tests: moves the threshold (0: the default again).
void set_heap_spill_bytes(std::size_t bytes) noexcept;

// Copies of this many bytes or more are shared by two threads (copy_big).
inline constexpr std::size_t kBigCopyBytes = std::size_t{8} << 20;
// memcpy; from kBigCopyBytes on, the process's copy helper thread takes chunks of it too, as soon
// as it runs (src/big_copy.cpp), unless another copy has the helper. bytes may be 0 with null
// pointers.
void copy_big(void* to, const void* from, std::size_t bytes) noexcept;
// Copies the helper took part in so far in this process (its parent's included, before a fork).
[[nodiscard]] std::uint64_t big_copies_helped() noexcept;
// memcpy, by copy_big from kBigCopyBytes on; bytes may be 0 with null pointers.
inline void copy_bytes(void* to, const void* from, std::size_t bytes) noexcept {
  if (bytes >= kBigCopyBytes)
    copy_big(to, from, bytes);
  else if (bytes)
    std::memcpy(to, from, bytes);
}

// 32 bytes: a pool keeps one per chunk it has queued (Record), by the hundred thousand.
class Writer {
 public:
  Writer() = default;
  // The moved-from Writer is empty, its storage and spill_to_heap() setting gone with the move.
  Writer(Writer&& other) noexcept { swap(other); }
  Writer& operator=(Writer&& other) noexcept {
    Writer taken(std::move(other));
    swap(taken);  // what this held is freed with taken
    return *this;
  }
  ~Writer() { free_storage(data_, heap_); }

  // From now on, once it would hold heap_spill_bytes() or more, its storage is a block of the
  // shared heap (in_heap()): written once there, the frame crosses as its address. When owner
  // is given, it names the heap block the buffer holds (nullptr: none) at every moment, so that
  // another process can free it should this one die (SlotShared::result_block).
  void spill_to_heap(std::atomic<void*>* owner = nullptr) noexcept {
    spill_ = true;
    owner_ = owner;
  }
  [[nodiscard]] bool in_heap() const noexcept { return heap_; }
  // Gives the heap block up without freeing it (its new owner frees it with heap::deallocate):
  // the buffer is empty afterwards, and its owner word says so.
  void release_heap() noexcept;

  void write(const void* data, std::size_t n) {
    if (n) copy_bytes(grow(n), data, n);
  }
  // Appends n bytes and returns where they start, for the caller to fill.
  std::byte* grow(std::size_t n) {
    if (size_ + n > capacity_) reserve(size_ + n);
    std::byte* p = data_ + size_;
    size_ += n;
    return p;
  }
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  [[nodiscard]] std::byte* data() noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  void clear() noexcept { size_ = 0; }
  void truncate(std::size_t size) noexcept {
    if (size < size_) size_ = size;
  }
  void reserve(std::size_t n);

 private:
  void swap(Writer& other) noexcept;
  // Frees storage: a block of the shared heap (heap), else new[]'s.
  static void free_storage(std::byte* data, bool heap) noexcept;

  // No allocation reaches 2^62 bytes: the two bits above capacity_ hold the flags.
  static constexpr std::size_t kCapacityMask = (std::size_t{1} << 62) - 1;
  void set_capacity(std::size_t capacity) noexcept { capacity_ = capacity & kCapacityMask; }

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ : 62 = 0;
  bool heap_ : 1 = false;   // data_ is a block of the shared heap, else new[]'s
  bool spill_ : 1 = false;  // grows into the heap past heap_spill_bytes()
  std::atomic<void*>* owner_ = nullptr;
};
static_assert(sizeof(Writer) == 32, "Writer: its capacity's top bits hold the flags");

class Reader {
 public:
  explicit Reader(std::span<const std::byte> bytes) noexcept : p_(bytes.data()), end_(p_ + bytes.size()) {}

  void read(void* out, std::size_t n) {
    const std::byte* p = take(n);
    if (n) std::memcpy(out, p, n);  // an empty vector's data() may be null: memcpy(nullptr, p, 0) is UB
  }
  // Consumes n bytes and returns where they start.
  const std::byte* take(std::size_t n) {
    if (n > remaining()) throw_short(n);
    const std::byte* p = p_;
    p_ += n;
    return p;
  }
  [[nodiscard]] std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }
  [[nodiscard]] bool empty() const noexcept { return p_ == end_; }

 private:
  [[noreturn]] void throw_short(std::size_t wanted) const;

  const std::byte* p_;
  const std::byte* end_;
};

}  // namespace mproc::detail
