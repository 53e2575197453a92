/// @file
/// codec.hpp: Sendable, the concept of a type that can cross a process boundary, and the
/// encode/decode (in detail) that carry it. Trivially copyable types travel as their bytes;
/// strings, vectors of trivially copyable types, and tuples and pairs of Sendable types have fast
/// paths; everything else goes through cereal's binary format, so a user type with a
/// serialize(Archive&) member (and a default constructor) just works. Decoding checks every
/// length against the bytes received and throws SerializationError rather than trust a frame.
/// Shared objects (Lock, Queue, Value, ...) cross as a handle to the same state in the shared
/// heap, which the receiver checks (mproc/detail/heap_object.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <cereal/types/array.hpp>
#include <cereal/types/bitset.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/complex.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include "mproc/detail/archive.hpp"
#include "mproc/detail/buffer.hpp"
#include "mproc/detail/heap_object.hpp"

namespace mproc {
namespace detail {

template <class T>
struct is_tuple_like : std::false_type {};
template <class... Ts>
struct is_tuple_like<std::tuple<Ts...>> : std::true_type {};
template <class A, class B>
struct is_tuple_like<std::pair<A, B>> : std::true_type {};

template <class T>
struct is_view_type : std::false_type {};
template <class C, class Tr>
struct is_view_type<std::basic_string_view<C, Tr>> : std::true_type {};
template <class T, std::size_t N>
struct is_view_type<std::span<T, N>> : std::true_type {};

/// Types that would arrive as an address into the sender's memory.
template <class T>
inline constexpr bool refers_elsewhere_v =
    std::is_pointer_v<T> || std::is_member_pointer_v<T> || std::is_reference_v<T> || is_view_type<T>::value;

/// A type that says how it is serialized (a serialize or save member) is encoded its own way,
/// even when it is trivially copyable.
template <class T>
inline constexpr bool has_own_serialize_v = cereal::traits::has_member_serialize<T, OutputArchive>::value ||
                                            cereal::traits::has_member_versioned_serialize<T, OutputArchive>::value ||
                                            cereal::traits::has_member_save<T, OutputArchive>::value ||
                                            cereal::traits::has_member_versioned_save<T, OutputArchive>::value;

/// Sent as its own bytes.
template <class T>
inline constexpr bool is_raw_v = std::is_trivially_copyable_v<T> && !refers_elsewhere_v<T> &&
                                 !std::is_same_v<T, bool> && !is_tuple_like<T>::value && !has_own_serialize_v<T>;

/// Whether a worker may write results of type T straight into the caller's memory (map_into).
template <class T>
inline constexpr bool placeable_v = is_raw_v<T> && !std::is_empty_v<T>;
/// The same, as a class (declared in backend.hpp, where the codec is not included).
template <class T>
struct is_placeable : std::bool_constant<placeable_v<T>> {};

template <class T>
struct is_raw_sequence : std::false_type {};
template <class C, class Tr, class A>
struct is_raw_sequence<std::basic_string<C, Tr, A>> : std::true_type {};
template <class T, class A>
struct is_raw_sequence<std::vector<T, A>> : std::bool_constant<is_raw_v<T>> {};

template <class T>
inline constexpr bool is_cereal_v = cereal::traits::is_output_serializable<T, OutputArchive>::value&&
    cereal::traits::is_input_serializable<T, InputArchive>::value&& std::is_default_constructible_v<T>;

template <class T>
struct sendable_tuple : std::false_type {};

}  // namespace detail

namespace detail {
/// A span of trivially copyable values: it crosses as its address and size when it lies in the
/// shared heap, which every process maps at the same address (else encoding it throws
/// SerializationError), and is read there with no copy.
template <class T>
struct is_heap_span : std::false_type {};
template <class E>
struct is_heap_span<std::span<E>> : std::bool_constant<is_raw_v<std::remove_const_t<E>>> {};
/// Whether T's target would not travel with it (a heap span's does not need to).
template <class T>
inline constexpr bool stays_behind_v = refers_elsewhere_v<T> && !is_heap_span<T>::value;
}  // namespace detail

/// A type that can be an argument or a result of a task run in another process, or an item of a
/// Queue or Pipe. Pointers, references, spans and string_views are refused (their targets would
/// not travel), but only at the top: a trivially copyable struct holding a pointer is sent as its
/// bytes, and the pointer means nothing in the receiving process. Shared objects (Lock, Queue,
/// Value, Array, ...) are Sendable: what crosses is a handle to the same state. And a std::span
/// of trivially copyable values that lies in the shared heap (mproc::shared_resource()) crosses
/// as its address, checked when it is sent and when it is received; the receiver reads it in place.
template <class T>
concept Sendable = detail::is_heap_span<T>::value ||
    (!detail::refers_elsewhere_v<T> &&
     (detail::is_raw_v<T> || std::is_same_v<T, bool> || detail::is_raw_sequence<T>::value ||
      detail::sendable_tuple<T>::value || detail::CrossesAsHandle<T> || detail::is_cereal_v<T>));

namespace detail {

template <class... Ts>
struct sendable_tuple<std::tuple<Ts...>> : std::bool_constant<(Sendable<Ts> && ...)> {};
template <class A, class B>
struct sendable_tuple<std::pair<A, B>> : std::bool_constant<Sendable<A> && Sendable<B>> {};

template <class T>
constexpr void check_sendable() {
  static_assert(!stays_behind_v<T>,
                "mproc: a pointer, reference, span or string_view cannot cross a process boundary: "
                "its target does not travel with it. Send the value itself (std::vector, std::string).");
  // Not for a pointer again: the advice below would contradict the one above.
  static_assert(stays_behind_v<T> || Sendable<T>,
                "mproc: this type cannot cross a process boundary. Make it trivially copyable, or "
                "give it a cereal serialize(Archive&) member (and a default constructor), or use "
                "mproc::ThreadPool, which passes values without serializing them.");
}

[[noreturn]] void rethrow_as_serialization_error(std::string_view what_was_done);

// A heap span's address and size; throws SerializationError when it lies outside the heap.
void encode_heap_span(Writer& w, const void* data, std::size_t bytes, std::size_t count);
// The address of a heap span of count elements of size bytes each, checked.
[[nodiscard]] const void* decode_heap_span(Reader& r, std::size_t element_bytes, std::size_t& count);

/// A string or vector of raw values is encoded as [u64 count][its bytes]: how many bytes that is.
template <class T>
std::size_t encoded_sequence_bytes(const T& value) noexcept {
  return sizeof(std::uint64_t) + value.size() * sizeof(typename T::value_type);
}
/// Writes bytes [from, from + to.size()) of value's encoding into to: a Queue writes a big item
/// straight into its payload block with it, in pieces.
template <class T>
void write_encoded_sequence(const T& value, std::size_t from, std::span<std::byte> to) noexcept {
  const auto n = static_cast<std::uint64_t>(value.size());
  std::size_t at = 0;
  if (from < sizeof n) {
    at = std::min(sizeof n - from, to.size());
    std::memcpy(to.data(), reinterpret_cast<const std::byte*>(&n) + from, at);
  }
  if (at < to.size())
    copy_bytes(to.data() + at, reinterpret_cast<const std::byte*>(value.data()) + (from + at - sizeof n),
               to.size() - at);
}

template <class T>
void encode(Writer& w, const T& value) {
  check_sendable<T>();
  if constexpr (CrossesAsHandle<T>) {
    encode(w, cross_handle(value));
  } else if constexpr (is_heap_span<T>::value) {
    encode_heap_span(w, value.data(), value.size_bytes(), value.size());
  } else if constexpr (is_raw_v<T> || std::is_same_v<T, bool>) {
    w.write(std::addressof(value), sizeof(T));
  } else if constexpr (is_tuple_like<T>::value) {
    std::apply([&w](const auto&... xs) { (encode(w, xs), ...); }, value);
  } else if constexpr (is_raw_sequence<T>::value) {
    const std::size_t bytes = encoded_sequence_bytes(value);
    write_encoded_sequence(value, 0, {w.grow(bytes), bytes});
  } else {
    try {
      OutputArchive ar(w);
      ar(value);
    } catch (const SerializationError&) {
      throw;
    } catch (...) {
      rethrow_as_serialization_error("encoding a value");
    }
  }
}

/// Large buffers about to be filled for the first time get huge pages when the system allows,
/// committed in one call (advice only): a fresh 64 MB vector then costs a few ms rather than
/// hundreds of first touches.
inline constexpr std::size_t kFreshBufferAdvice = std::size_t{4} << 20;
void advise_fresh_buffer(void* p, std::size_t bytes) noexcept;
/// Big bytes about to be read from the shared heap are mapped into this process in one call, not
/// by a fault per page (advice only).
void map_for_reading(const void* p, std::size_t bytes) noexcept;

/// Big buffers kept for reuse: a worker that decodes a 64 MB argument, call after call, decodes
/// it into the buffer its last result left (keep_spare), whose pages are already there, rather
/// than into fresh memory that costs a page fault per page. One spare per type and thread, of
/// kFreshBufferAdvice to kSpareMaxBytes; release_spares() drops them (a pool worker idle a
/// second does). Only standard-allocator strings and vectors: a pmr one's resource is its own.
inline constexpr std::size_t kSpareMaxBytes = std::size_t{256} << 20;
template <class T>
struct is_spare_kind : std::false_type {};
template <class E>
struct is_spare_kind<std::vector<E>> : std::bool_constant<is_raw_v<E>> {};
template <class C, class Tr>
struct is_spare_kind<std::basic_string<C, Tr>> : std::true_type {};
template <class T>
inline constexpr bool spare_kind_v = is_spare_kind<T>::value;
template <class T>
T& spare_of() noexcept {
  thread_local T spare;
  return spare;
}
/// Remembers that this thread holds a spare, dropped by drop().
void note_spare(void (*drop)() noexcept) noexcept;
/// Drops this thread's spares; whether any were held.
bool release_spares() noexcept;
[[nodiscard]] bool spares_held() noexcept;
template <class T>
void drop_spare() noexcept {
  spare_of<T>() = T();
}
/// Keeps value's buffer as this thread's spare of its type when it is big (and bigger than the
/// spare held); value is left empty then.
template <class T>
void keep_spare(T& value) noexcept {
  if constexpr (spare_kind_v<T>) {
    const std::size_t bytes = value.capacity() * sizeof(typename T::value_type);
    T& spare = spare_of<T>();
    if (bytes < kFreshBufferAdvice || bytes > kSpareMaxBytes || spare.capacity() >= value.capacity()) return;
    spare = std::move(value);  // its size kept: decode_sequence overwrites it, with no zero-filling first
    note_spare(&drop_spare<T>);
  }
}
/// As keep_spare, for each part of a tuple or pair.
template <class T>
void keep_spares(T& value) noexcept {
  if constexpr (is_tuple_like<T>::value)
    std::apply([](auto&... xs) { (keep_spares(xs), ...); }, value);
  else
    keep_spare(value);
}
/// Gives value this thread's spare of its type when that holds count elements.
template <class T>
bool take_spare(T& value, std::size_t count) noexcept {
  if constexpr (spare_kind_v<T>) {
    T& spare = spare_of<T>();
    if (spare.capacity() < count) return false;
    value = std::move(spare);
    spare = T();
    return true;
  } else {
    return false;
  }
}

/// The element count of the last big value of T (kFreshBufferAdvice bytes or more) this thread
/// decoded, or 0 once a spare readied for one went unused: what prepare_spare readies a spare for.
template <class T>
std::size_t& last_big_count() noexcept {
  thread_local std::size_t count = 0;
  return count;
}
/// Readies this thread's spare of T for a value as big as the last big one it decoded (its pages
/// committed), unless it holds one as big already; true when it made one. A thread about to sleep
/// until a big result arrives for it to read commits the result's memory meanwhile, while the
/// worker makes the result, rather than after it (JobBase::wait_working).
template <class T>
bool prepare_spare() noexcept {
  if constexpr (spare_kind_v<T>) {
    const std::size_t count = last_big_count<T>();
    T& spare = spare_of<T>();
    if (count == 0 || spare.capacity() >= count) return false;
    try {
      T fresh;
      fresh.reserve(count);
      advise_fresh_buffer(fresh.data(), count * sizeof(typename T::value_type));
      spare = std::move(fresh);
    } catch (const std::bad_alloc&) {
      return false;  // the decode makes its own, as it would have
    }
    return true;
  } else {
    return false;
  }
}
/// After prepare_spare: drops the spare if no decode took it, and expects no big value of T until
/// this thread decodes one again (no more spares made for results that turned out small).
template <class T>
void unprepare_spare() noexcept {
  if constexpr (spare_kind_v<T>) {
    if (spare_of<T>().capacity() == 0) return;  // taken
    drop_spare<T>();
    last_big_count<T>() = 0;
  }
}

/// Decodes a string or a vector of raw values into value (its capacity reused, or a spare's):
/// the bytes are copied once, with no zero-filling pass first where the element is a byte or
/// where a spare's elements are overwritten; a big copy by two threads (copy_big).
template <class T>
void decode_sequence(Reader& r, T& value) {
  using E = typename T::value_type;
  std::uint64_t n = 0;
  r.read(&n, sizeof n);
  if (n > r.remaining() / sizeof(E)) throw_bad_length(n, r.remaining());
  const auto count = static_cast<std::size_t>(n);
  const std::size_t bytes = count * sizeof(E);
  if constexpr (spare_kind_v<T>)
    if (bytes >= kFreshBufferAdvice) last_big_count<T>() = count;
  if (count > value.capacity() && !(bytes >= kFreshBufferAdvice && take_spare(value, count))) {
    value = T(value.get_allocator());  // a fresh buffer, not a copy of the old one
    value.reserve(count);
    if (bytes >= kFreshBufferAdvice) advise_fresh_buffer(value.data(), bytes);
  }
  const std::byte* from = r.take(bytes);
  if (bytes >= kFreshBufferAdvice) map_for_reading(from, bytes);
  if (bytes >= kBigCopyBytes && value.size() >= count) {
    value.resize(count);  // a spare's elements, overwritten: nothing is zero-filled first
    copy_big(value.data(), from, bytes);
  } else if constexpr (std::is_integral_v<E> && sizeof(E) == 1) {
    // Byte-sized elements may be read from the frame's bytes as they are.
    const auto* p = reinterpret_cast<const E*>(from);
    value.assign(p, p + count);
  } else {
    value.resize(count);
    copy_bytes(value.data(), from, bytes);
  }
}

template <class T>
T decode(Reader& r) {
  check_sendable<T>();
  if constexpr (CrossesAsHandle<T>) {
    using Handle = decltype(cross_handle(std::declval<const T&>()));
    return adopt_handle(std::type_identity<T>{}, decode<Handle>(r));
  } else if constexpr (is_heap_span<T>::value) {
    std::size_t count = 0;
    const void* at = decode_heap_span(r, sizeof(typename T::element_type), count);
    return T(static_cast<typename T::element_type*>(const_cast<void*>(at)), count);  // NOLINT: the heap's, shared
  } else if constexpr (std::is_same_v<T, bool>) {
    auto byte = static_cast<unsigned char>(*r.take(1));
    if (byte > 1) throw SerializationError("mproc: decoding a bool found the byte " + std::to_string(byte));
    return byte != 0;
  } else if constexpr (is_raw_v<T>) {
    std::array<std::byte, sizeof(T)> bytes;
    r.read(bytes.data(), sizeof(T));
    return std::bit_cast<T>(bytes);
  } else if constexpr (is_tuple_like<T>::value) {
    // Braced initialization evaluates left to right, matching the order encode wrote.
    return [&r]<std::size_t... I>(std::index_sequence<I...>) { return T{decode<std::tuple_element_t<I, T>>(r)...}; }
    (std::make_index_sequence<std::tuple_size_v<T>>{});
  } else if constexpr (is_raw_sequence<T>::value) {
    T value;
    decode_sequence(r, value);
    return value;
  } else {
    T value{};
    try {
      InputArchive ar(r);
      ar(value);
    } catch (const SerializationError&) {
      throw;
    } catch (...) {
      rethrow_as_serialization_error("decoding a value");
    }
    return value;
  }
}

/// Decodes into an existing value, reusing what it owns (a vector's capacity): a worker decodes
/// every item of a chunk into one object instead of allocating one per item.
template <class T>
void decode_into(Reader& r, T& value) {
  if constexpr (is_tuple_like<T>::value) {
    std::apply([&r](auto&... xs) { (decode_into(r, xs), ...); }, value);
  } else if constexpr (is_raw_sequence<T>::value) {
    decode_sequence(r, value);
  } else if constexpr (std::is_move_assignable_v<T>) {
    value = decode<T>(r);
  } else {
    static_assert(std::is_move_assignable_v<T>, "mproc: decode_into needs an assignable type");
  }
}

/// Exceptions cross as their registered type's name and what(); an unregistered type arrives
/// as RemoteError carrying the thrown type's name.
void encode_exception(Writer& w, const std::exception_ptr& e);
std::exception_ptr decode_exception(Reader& r);

}  // namespace detail
}  // namespace mproc
