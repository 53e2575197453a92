// Shared objects in the heap: see mproc/detail/heap_object.hpp for the design and why.
#include "mproc/detail/heap_object.hpp"

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "mproc/errors.hpp"
#include "mproc/shared_heap.hpp"
#include "os/os.hpp"

namespace mproc::detail {
namespace {

constexpr std::uint64_t kObjectMagic = 0x6d70726f636f626a;  // "mprocobj"
constexpr std::size_t kHeaderBytes = 64;                    // the state starts a cache line in

// An object's life in one word, so that an attach checks it is alive and takes a reference in one
// atomic step: the upper half is the upper half of its nonce (never 0), the lower its references
// (processes', freed when they reach 0). Checking the nonce, then counting, in two steps would let
// a block freed and reused between them (a new object, or anything else) be counted into.
constexpr std::uint64_t kRefsMask = 0xffff'ffff;
constexpr std::uint64_t life_of(std::uint64_t nonce, std::uint32_t refs) noexcept {
  return (nonce & ~kRefsMask) | refs;
}

struct ObjectHeader {
  std::uint64_t magic;  // kObjectMagic while the object lives; 0 once freed
  std::uint64_t nonce;
  std::atomic<std::uint64_t> life;  // life_of(nonce, references); references 0 once the last went
  std::uint32_t kind;
  std::uint64_t tag;
  std::uint64_t bytes;
};
static_assert(sizeof(ObjectHeader) <= kHeaderBytes);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "shared between processes");

ObjectHeader* header_of(const void* state) noexcept {
  return reinterpret_cast<ObjectHeader*>(static_cast<std::byte*>(const_cast<void*>(state)) - kHeaderBytes);
}

// Unguessable, and its upper half (in life) never 0, nor then the nonce (a freed header's): a
// forged handle cannot name a live object.
std::uint64_t draw_nonce() {
  std::uint64_t n = 0;
  while ((n & ~kRefsMask) == 0) os::random_bytes(&n, sizeof n);
  return n;
}

// Gives back one reference; the last frees the state. Only in the process that took it: a forked
// child's inherited handles borrow the parent's.
std::shared_ptr<void> owned(void* state, DestroyState destroy) {
  return std::shared_ptr<void>(state, [pid = os::getpid(), destroy](void* s) {
    if (os::getpid() != pid) return;
    ObjectHeader* h = header_of(s);
    if ((h->life.fetch_sub(1, std::memory_order_acq_rel) & kRefsMask) != 1) return;
    destroy(s);
    std::atomic_ref(h->magic).store(0, std::memory_order_release);
    std::atomic_ref(h->nonce).store(0, std::memory_order_release);
    shared_resource()->deallocate(h, kHeaderBytes + h->bytes, kHeaderBytes);
  });
}

[[noreturn]] void refuse(const char* what, const std::string& why) {
  throw SerializationError(std::string("mproc: a ") + what + "'s handle was refused: " + why);
}

}  // namespace

std::shared_ptr<void> make_heap_object(ObjectKind kind, std::uint64_t tag, std::size_t bytes, DestroyState destroy) {
  const std::uint64_t nonce = draw_nonce();
  void* block = shared_resource()->allocate(kHeaderBytes + bytes, kHeaderBytes);
  std::memset(block, 0, kHeaderBytes + bytes);  // a reused block holds its last owner's bytes
  ::new (block) ObjectHeader{kObjectMagic, nonce, {life_of(nonce, 1)}, static_cast<std::uint32_t>(kind), tag, bytes};
  return owned(static_cast<std::byte*>(block) + kHeaderBytes, destroy);
}

std::shared_ptr<void> attach_heap_object(const ObjectHandle& handle, ObjectKind kind, std::uint64_t tag,
                                         DestroyState destroy, const char* what) {
  const auto* at = reinterpret_cast<const void*>(handle.address);
  if (handle.address % kHeaderBytes != 0 || !in_shared_heap(at, kHeaderBytes))
    refuse(what, "it does not point into the shared heap");
  if (handle.kind != static_cast<std::uint32_t>(kind)) refuse(what, "it names another kind of object");
  auto* h = reinterpret_cast<ObjectHeader*>(handle.address);
  // First whether an object of the handle's is there at all, so that nothing is counted into a
  // block that holds something else. Read once each: another process may be freeing it meanwhile.
  constexpr const char* kGone = "no live object is there (forged, or every process dropped it before it arrived)";
  if (std::atomic_ref(h->magic).load(std::memory_order_acquire) != kObjectMagic || handle.nonce == 0 ||
      std::atomic_ref(h->nonce).load(std::memory_order_acquire) != handle.nonce)
    refuse(what, kGone);
  if (h->kind != static_cast<std::uint32_t>(kind) || h->tag != tag) refuse(what, "the object there is of another type");
  if (!in_shared_heap(at, kHeaderBytes + h->bytes)) refuse(what, "its size runs past the shared heap");
  // Then a reference, in the one step that checks it is still that object and still referenced:
  // it may have been freed since, its block reused.
  std::uint64_t life = h->life.load(std::memory_order_relaxed);
  do {
    if ((life & ~kRefsMask) != (handle.nonce & ~kRefsMask) || (life & kRefsMask) == 0)
      refuse(what, "every process dropped the object before it arrived");
  } while (!h->life.compare_exchange_weak(life, life + 1, std::memory_order_acq_rel, std::memory_order_relaxed));
  // Held, it stays. A new object whose nonce has the same upper half (one in 2^32, in that race)
  // is given its reference back; never freed here, as this side may not know its type: if this
  // was its last reference it leaks, as an object does whose holder is killed.
  if (std::atomic_ref(h->nonce).load(std::memory_order_acquire) != handle.nonce) {
    h->life.fetch_sub(1, std::memory_order_acq_rel);
    refuse(what, kGone);
  }
  return owned(reinterpret_cast<std::byte*>(h) + kHeaderBytes, destroy);
}

ObjectHandle handle_of(const void* state) noexcept {
  const ObjectHeader* h = header_of(state);
  return {reinterpret_cast<std::uint64_t>(h), h->nonce, h->kind, 0};
}

std::size_t heap_object_bytes(const void* state) noexcept { return header_of(state)->bytes; }

std::size_t array_bytes(std::size_t n, std::size_t element_size) {
  if (element_size != 0 && n > (SIZE_MAX - kHeaderBytes) / element_size)
    throw std::invalid_argument("mproc::Array: " + std::to_string(n) + " elements of " + std::to_string(element_size) +
                                " bytes overflow the address space");
  return n * element_size;
}

std::uint32_t heap_object_refs(const ObjectHandle& h) noexcept {
  return static_cast<std::uint32_t>(
      reinterpret_cast<const ObjectHeader*>(h.address)->life.load(std::memory_order_relaxed) & kRefsMask);
}

}  // namespace mproc::detail
