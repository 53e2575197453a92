/// @file
/// shared_memory.hpp: memory shared between processes —
///
///     SharedMemory   a named POSIX shared-memory block (multiprocessing.shared_memory.SharedMemory)
///     Value<T>       one T in the shared heap, with a lock (multiprocessing.Value)
///     Array<T>       n Ts in the shared heap, with a lock (multiprocessing.Array)
/// Value and Array live in the shared heap (mproc/shared_heap.hpp): made at any time, before or
/// after a Pool or Process, shared by forked children, and Sendable (a task argument, a Process
/// argument, a queue item crosses as a checked handle to the same memory); nothing is named.
/// SharedMemory blocks are named, so unrelated code can attach.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "mproc/detail/heap_object.hpp"
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
/// A SharedMemory is Sendable: as a task argument or queue item its name crosses, and the
/// receiver has its own mapping of the same block (attach()).
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
  /// What crosses to another process (a task argument, a queue item): the block's name.
  friend std::string cross_handle(const SharedMemory& x) { return x.name_; }
  /// The block a received name names, attached: std::system_error when there is none.
  friend SharedMemory adopt_handle(std::type_identity<SharedMemory>, const std::string& name) { return attach(name); }
  std::string name_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

/// One T (trivially copyable) in the shared heap, with an RLock for compound updates
/// (multiprocessing.Value). get() and set() take the lock; copies of a Value share the same T and
/// lock, in every process it reaches. A read-modify-write takes the lock around it:
///
///     std::scoped_lock hold(v.get_lock());
///     v.value() += 1;
/// Made at any time; freed when no process holds a copy; nothing is named or left behind.
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
  /// What crosses: the T's handle, then the lock's.
  using Handles = std::pair<detail::ObjectHandle, detail::ObjectHandle>;
  explicit Value(const Handles& h);
  /// What crosses to another process: a handle to the same state (codec.hpp).
  friend Handles cross_handle(const Value& x) noexcept {
    return {detail::handle_of(x.p_.get()), cross_handle(x.lock_)};
  }
  /// The object a received handle names; SerializationError unless it names a live one.
  friend Value adopt_handle(std::type_identity<Value>, const Handles& h) { return Value(h); }

  std::shared_ptr<T> p_;
  mutable RLock lock_;
};

/// n Ts (trivially copyable) in the shared heap, zeroed or copied from a list, with an RLock
/// (multiprocessing.Array). Element access does not lock: take get_lock() around updates that
/// must be atomic. Copies share the elements and lock, in every process they reach. Made at any
/// time: a process Pool, made before or after it, reads map's and starmap's items from it in
/// place, without a copy, and an Array passed as a task argument is the same memory in the task.
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
  /// What crosses: the elements' handle, then the lock's.
  using Handles = std::pair<detail::ObjectHandle, detail::ObjectHandle>;
  explicit Array(const Handles& h);
  /// What crosses to another process: a handle to the same state (codec.hpp).
  friend Handles cross_handle(const Array& x) noexcept {
    return {detail::handle_of(x.p_.get()), cross_handle(x.lock_)};
  }
  /// The object a received handle names; SerializationError unless it names a live one.
  friend Array adopt_handle(std::type_identity<Array>, const Handles& h) { return Array(h); }

  std::shared_ptr<T> p_;
  std::size_t n_;
  RLock lock_;
};

// --- definitions --------------------------------------------------------------------------------

template <class T>
Value<T>::Value(const T& initial)
    : p_(std::static_pointer_cast<T>(detail::make_heap_object(detail::ObjectKind::value, detail::element_tag<T>(),
                                                              sizeof(T), &detail::destroy_state<T>))) {
  *p_ = initial;
}

template <class T>
Value<T>::Value(const Handles& h)
    : p_(std::static_pointer_cast<T>(detail::attach_heap_object(
          h.first, detail::ObjectKind::value, detail::element_tag<T>(), &detail::destroy_state<T>, "mproc::Value"))),
      lock_(adopt_handle(std::type_identity<RLock>{}, h.second)) {}

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

namespace detail {
/// An Array's bytes: n * sizeof(T), or std::invalid_argument when that overflows.
std::size_t array_bytes(std::size_t n, std::size_t element_size);
}  // namespace detail

template <class T>
Array<T>::Array(std::size_t n)
    : p_(std::static_pointer_cast<T>(detail::make_heap_object(detail::ObjectKind::array, detail::element_tag<T>(),
                                                              detail::array_bytes(n, sizeof(T)),
                                                              &detail::destroy_state<T>))),
      n_(n) {}

template <class T>
Array<T>::Array(const Handles& h)
    : p_(std::static_pointer_cast<T>(detail::attach_heap_object(
          h.first, detail::ObjectKind::array, detail::element_tag<T>(), &detail::destroy_state<T>, "mproc::Array"))),
      n_(detail::heap_object_bytes(p_.get()) / sizeof(T)),
      lock_(adopt_handle(std::type_identity<RLock>{}, h.second)) {}

template <class T>
Array<T>::Array(std::initializer_list<T> values) : Array(values.size()) {
  std::size_t i = 0;
  for (const T& v : values) p_.get()[i++] = v;
}

}  // namespace mproc
