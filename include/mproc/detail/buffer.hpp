// buffer.hpp: Writer, a growable byte buffer that encoding appends to, and Reader, a
// bounds-checked view that decoding consumes. Reader never reads past its end: a short read
// throws SerializationError.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>

#include "mproc/errors.hpp"

namespace mproc::detail {

class Writer {
 public:
  Writer() = default;
  Writer(Writer&&) noexcept = default;
  Writer& operator=(Writer&&) noexcept = default;

  void write(const void* data, std::size_t n) {
    if (n) std::memcpy(grow(n), data, n);
  }
  // Appends n bytes and returns where they start, for the caller to fill.
  std::byte* grow(std::size_t n) {
    if (size_ + n > capacity_) reserve(size_ + n);
    std::byte* p = data_.get() + size_;
    size_ += n;
    return p;
  }
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_.get(), size_}; }
  [[nodiscard]] std::byte* data() noexcept { return data_.get(); }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  void clear() noexcept { size_ = 0; }
  void truncate(std::size_t size) noexcept {
    if (size < size_) size_ = size;
  }
  void reserve(std::size_t n);

 private:
  std::unique_ptr<std::byte[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

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
