// heap_object.hpp: the one mechanism behind every unnamed shared object (Lock, RLock, Semaphore,
// Event, Condition, Barrier, Value, Array, the queues): its state lives in the shared heap, so it
// may be made at any time and every process of the program reaches it at the same address; and
// what crosses to another process (a task argument, a queue or pipe item) is an ObjectHandle,
// which the receiver checks before it follows it.
//
// Layout: [ObjectHeader, 64 bytes][the state...], one heap block. The header says what the state
// is (kind, and for Value and Array the element type), carries a random nonce drawn when the
// object was made, and counts references: one per group of handle copies in one process (a
// std::shared_ptr's control block). Made or received in a process, a group takes a reference;
// its last copy there gives it back, and whoever gives back the last one frees the state. A
// forked child's inherited handles borrow the parent's reference (they are never counted, and
// never given back: the child leaves with _exit, or destroys them without effect), so the parent
// keeps an object while children use it by inheritance — as Python asks of objects a child
// inherits; Process keeps its arguments' objects for its child until it is reaped.
// A process killed holding a reference keeps that object from being freed: it leaks, never
// corrupts (the heap goes with the last process).
//
// A handle is refused (SerializationError naming the kind) unless it points into the heap at a
// header of the expected kind and element type whose nonce matches and which some process still
// references: a forged or stale handle is never followed. The sender must keep its object until
// the receiver has its own handle (a task's arguments until its result is ready, a queue item
// until it is taken); a handle received after the last reference went is refused.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace mproc::detail {

enum class ObjectKind : std::uint32_t {
  lock = 1,
  rlock,
  semaphore,
  event,
  condition,
  barrier,
  queue,
  value,
  array,
};

// What crosses for one shared object: sent as its bytes.
struct ObjectHandle {
  std::uint64_t address = 0;  // the object's header, at the same address in every process
  std::uint64_t nonce = 0;    // the object's, drawn when it was made
  std::uint32_t kind = 0;     // an ObjectKind
  std::uint32_t reserved = 0;
};
static_assert(std::is_trivially_copyable_v<ObjectHandle>);

// What a heap object is, beyond its kind: for Value and Array, the element type (its size and
// typeid, the same in every process forked from the program); 0 for the rest.
template <class T>
std::uint64_t element_tag() noexcept {
  return typeid(T).hash_code() * 31 + sizeof(T);
}

// Runs the state's destructor when the last reference goes, before its block is freed.
using DestroyState = void (*)(void* state) noexcept;

// A new object of bytes zeroed bytes in the heap, owned by a reference of this process; the
// pointer is the state (after the header). Throws std::bad_alloc when the heap is exhausted.
std::shared_ptr<void> make_heap_object(ObjectKind kind, std::uint64_t tag, std::size_t bytes, DestroyState destroy);
// Takes a reference of this process to the object h names, after checking it names a live object
// of this kind and tag; else throws SerializationError naming what (for messages: "Lock").
std::shared_ptr<void> attach_heap_object(const ObjectHandle& h, ObjectKind kind, std::uint64_t tag,
                                         DestroyState destroy, const char* what);
// The handle of the object whose state is at state (from make_heap_object or attach_heap_object).
ObjectHandle handle_of(const void* state) noexcept;
// The bytes given to make_heap_object for the object whose state is at state.
std::size_t heap_object_bytes(const void* state) noexcept;
// How many references processes hold to the object h names (trusted: for tests): a snapshot.
std::uint32_t heap_object_refs(const ObjectHandle& h) noexcept;

template <class T>
void destroy_state(void* state) noexcept {
  static_cast<T*>(state)->~T();
}

// Builds a T in a new heap object. T must be fine to use from any process (atomics, PODs,
// process-shared mutexes); its destructor runs where the last reference goes.
template <class T, class... Args>
std::shared_ptr<T> make_shared_state(ObjectKind kind, Args&&... args) {
  std::shared_ptr<void> object = make_heap_object(kind, 0, sizeof(T), &destroy_state<T>);
  T* p = ::new (object.get()) T(std::forward<Args>(args)...);
  return std::shared_ptr<T>(std::move(object), p);
}

// The T of a received handle (see attach_heap_object).
template <class T>
std::shared_ptr<T> attach_shared_state(const ObjectHandle& h, ObjectKind kind, const char* what) {
  return std::static_pointer_cast<T>(attach_heap_object(h, kind, 0, &destroy_state<T>, what));
}

// A type whose values cross to another process as a handle to the same shared state: it has
// (as hidden friends, found by ADL) cross_handle(x), something Sendable that names the state,
// and adopt_handle(std::type_identity<T>, h), a T sharing the state h names (checked).
template <class T>
concept CrossesAsHandle = requires(const T& x) {
  cross_handle(x);
  { adopt_handle(std::type_identity<T>{}, cross_handle(x)) } -> std::same_as<T>;
};

}  // namespace mproc::detail
