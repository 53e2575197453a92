/// @file
/// shared_memory.hpp: memory shared between processes —
///
///     SharedMemory   a named POSIX shared-memory block (multiprocessing.shared_memory.SharedMemory)
///     Value<T>       one T in unnamed shared memory, with a lock (multiprocessing.Value)
///     Array<T>       n Ts in unnamed shared memory, with a lock (multiprocessing.Array)
/// Value and Array live in a shared anonymous mapping: create them before the fork; children
/// share them and nothing is named. SharedMemory blocks are named, so unrelated code can attach.
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

/// A named block of shared memory. create() names it "psm_" and 128 random bits in hex (or a name
/// you give), O_EXCL, mode 0600; attach() maps an existing block by name. The object owns its
/// mapping and is move-only; its accessors may be used from several threads, but close() and
/// moves must not race them (the bytes are only memory: guard them yourself). Cleanup: a block
/// created here is unlinked by unlink(), or at the latest by a tracker process once the creating
/// process and all it forked since its first create() have ended, even if they crashed (see
/// src/primitives/tracker.cpp); attach() elsewhere does not extend that, and a name over 253
/// characters is not tracked.
class SharedMemory {
 public:
  /// A new block of size bytes, zeroed, named at random or name.
  /// size 0 or an empty name throws std::invalid_argument; an existing name throws
  /// std::system_error (file_exists). A leading '/' in name is dropped.
  ///@{
  [[nodiscard]] static SharedMemory create(std::size_t size);
  [[nodiscard]] static SharedMemory create(std::size_t size, std::string_view name);
  ///@}
  /// Maps the whole block. A missing name throws std::system_error (no_such_file_or_directory);
  /// an empty block std::invalid_argument.
  [[nodiscard]] static SharedMemory attach(std::string_view name);

  /// Takes over other's mapping; other is left closed. Assignment closes this one's first.
  ///@{
  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  ///@}
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  ~SharedMemory() { close(); }

  /// nullptr after close().
  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  /// The whole block as bytes (Python's buf); empty after close().
  [[nodiscard]] std::span<std::byte> buf() const noexcept { return {data_, size_}; }
  /// The block's size in bytes, as mapped.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// The name another process passes to attach().
  [[nodiscard]] const std::string& name() const noexcept { return name_; }  // no leading slash
  /// Unmaps this process's view (the destructor does it too); the block stays until unlink().
  void close() noexcept;
  /// Removes the name (the memory lives on while mapped) and tells the tracker. Once, by one
  /// process: a second unlink() throws std::system_error (no_such_file_or_directory).
  void unlink();

 private:
  SharedMemory(std::string name, std::byte* data, std::size_t size) noexcept
      : name_(std::move(name)), data_(data), size_(size) {}
  std::string name_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

/// One T (trivially copyable) in an anonymous shared mapping, with an RLock for compound updates
/// (multiprocessing.Value). get() and set() take the lock; copies of a Value share the same T and
/// lock. Create it before the fork; it names nothing, so nothing is left behind.
template <class T>
class Value {
  static_assert(std::is_trivially_copyable_v<T>, "mproc::Value<T>: T must be trivially copyable");

 public:
  /// A new shared T holding initial. Throws std::system_error when the mapping fails.
  explicit Value(const T& initial = T{});
  /// A copy of the T, read under the lock.
  [[nodiscard]] T get() const;
  /// Writes x under the lock.
  void set(const T& x);
  /// The lock get() and set() take, shared with every copy (Python's get_lock()).
  [[nodiscard]] RLock& get_lock() noexcept { return lock_; }
  /// The shared T itself, for updates made under get_lock().
  [[nodiscard]] T& value() const noexcept { return *p_; }

 private:
  std::shared_ptr<T> p_;
  mutable RLock lock_;
};

/// n Ts (trivially copyable) in an anonymous shared mapping, zeroed or copied from a list, with
/// an RLock (multiprocessing.Array). Element access does not lock: take get_lock() around updates
/// that must be atomic. Copies share the elements and lock. Create it before the fork.
/// A Pool made after it reads map's and starmap's items from it in place, without a copy.
template <class T>
class Array {
  static_assert(std::is_trivially_copyable_v<T>, "mproc::Array<T>: T must be trivially copyable");

 public:
  /// n zeroed elements. Throws std::system_error when the mapping fails.
  explicit Array(std::size_t n);
  /// A copy of values.
  Array(std::initializer_list<T> values);
  /// Element i, unchecked and unlocked, as a reference into the shared memory.
  [[nodiscard]] T& operator[](std::size_t i) const noexcept { return p_.get()[i]; }
  /// The number of elements.
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// The elements in place, for ranges and std algorithms.
  [[nodiscard]] std::span<T> span() const noexcept { return {p_.get(), n_}; }
  /// The elements as a range of T*, so that a range-for or pool.map(f, array) reads them in place.
  ///@{
  [[nodiscard]] T* begin() const noexcept { return p_.get(); }
  [[nodiscard]] T* end() const noexcept { return p_.get() + n_; }
  ///@}
  /// The lock to take around updates that must be atomic, shared with every copy.
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
