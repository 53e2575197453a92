// shared_memory.hpp: memory shared between processes —
//   SharedMemory   a named POSIX shared-memory block (multiprocessing.shared_memory.SharedMemory)
//   Value<T>       one T in unnamed shared memory, with a lock (multiprocessing.Value)
//   Array<T>       n Ts in unnamed shared memory, with a lock (multiprocessing.Array)
// Value and Array live in a shared anonymous mapping: create them before the fork; children
// share them and nothing is named. SharedMemory blocks are named, so unrelated code can attach.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "mproc/detail/shared_region.hpp"
#include "mproc/sync.hpp"

namespace mproc {

// A named block of shared memory. create() names it "psm_" and 128 random bits (or a name you
// give), O_EXCL, mode 0600; attach() maps an existing block by name. The object owns its mapping
// and is move-only; it is safe to use from several threads (it is only memory: guard the bytes
// yourself). Cleanup: a block created in this program is unlinked by unlink(), or, at the latest,
// by a tracker process once every process of the program that could use it has ended, even if
// they crashed (see src/primitives/tracker.cpp).
class SharedMemory {
 public:
  // size 0 throws std::invalid_argument; an existing name throws std::system_error(file_exists).
  [[nodiscard]] static SharedMemory create(std::size_t size);
  [[nodiscard]] static SharedMemory create(std::size_t size, std::string_view name);
  // A missing name throws std::system_error(no_such_file_or_directory).
  [[nodiscard]] static SharedMemory attach(std::string_view name);

  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  ~SharedMemory() { close(); }

  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::span<std::byte> buf() const noexcept { return {data_, size_}; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }  // no leading slash
  // Unmaps this process's view; the block stays until unlink().
  void close() noexcept;
  // Removes the name (the memory lives on while mapped). Once, by one process.
  void unlink();

 private:
  SharedMemory(std::string name, std::byte* data, std::size_t size) noexcept
      : name_(std::move(name)), data_(data), size_(size) {}
  std::string name_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

// One T (trivially copyable) shared between processes, with an RLock for compound updates.
// get() and set() take the lock; copies of a Value share the same T.
template <class T>
class Value {
  static_assert(std::is_trivially_copyable_v<T>, "mproc::Value<T>: T must be trivially copyable");

 public:
  explicit Value(const T& initial = T{});
  [[nodiscard]] T get() const;
  void set(const T& x);
  [[nodiscard]] RLock& get_lock() noexcept { return lock_; }
  // The shared T itself, for updates made under get_lock().
  [[nodiscard]] T& value() const noexcept { return *p_; }

 private:
  std::shared_ptr<T> p_;
  mutable RLock lock_;
};

// n Ts (trivially copyable) shared between processes, zeroed or copied from a list, with an
// RLock. Element access does not lock: take get_lock() around updates that must be atomic.
template <class T>
class Array {
  static_assert(std::is_trivially_copyable_v<T>, "mproc::Array<T>: T must be trivially copyable");

 public:
  explicit Array(std::size_t n);
  Array(std::initializer_list<T> values);
  [[nodiscard]] T& operator[](std::size_t i) const noexcept { return p_.get()[i]; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  [[nodiscard]] std::span<T> span() const noexcept { return {p_.get(), n_}; }
  [[nodiscard]] T* begin() const noexcept { return p_.get(); }
  [[nodiscard]] T* end() const noexcept { return p_.get() + n_; }
  [[nodiscard]] RLock& get_lock() noexcept { return lock_; }

 private:
  std::shared_ptr<T> p_;
  std::size_t n_;
  RLock lock_;
};

// --- definitions --------------------------------------------------------------------------------

template <class T>
Value<T>::Value(const T& initial) : p_(std::static_pointer_cast<T>(detail::map_shared_region(sizeof(T)))) {
  *p_ = initial;
}

template <class T>
T Value<T>::get() const {
  std::scoped_lock hold(lock_);
  return *p_;
}

template <class T>
void Value<T>::set(const T& x) {
  std::scoped_lock hold(lock_);
  *p_ = x;
}

template <class T>
Array<T>::Array(std::size_t n)
    : p_(std::static_pointer_cast<T>(detail::map_shared_region(n == 0 ? 1 : n * sizeof(T)))), n_(n) {}

template <class T>
Array<T>::Array(std::initializer_list<T> values) : Array(values.size()) {
  std::size_t i = 0;
  for (const T& v : values) p_.get()[i++] = v;
}

}  // namespace mproc
