/// @file
/// codec.hpp: Sendable, the concept of a type that can cross a process boundary, and the
/// encode/decode (in detail) that carry it. Trivially copyable types travel as their bytes;
/// strings, vectors of trivially copyable types, and tuples and pairs of Sendable types have fast
/// paths; everything else goes through cereal's binary format, so a user type with a
/// serialize(Archive&) member (and a default constructor) just works. Decoding checks every
/// length against the bytes received and throws SerializationError rather than trust a frame.
#pragma once

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

/// A type that can be an argument or a result of a task run in another process, or an item of a
/// Queue or Pipe. Pointers, references, spans and string_views are refused (their targets would
/// not travel), but only at the top: a trivially copyable struct holding a pointer is sent as its
/// bytes, and the pointer means nothing in the receiving process.
template <class T>
concept Sendable = !detail::refers_elsewhere_v<T> &&
                   (detail::is_raw_v<T> || std::is_same_v<T, bool> || detail::is_raw_sequence<T>::value ||
                    detail::sendable_tuple<T>::value || detail::is_cereal_v<T>);

namespace detail {

template <class... Ts>
struct sendable_tuple<std::tuple<Ts...>> : std::bool_constant<(Sendable<Ts> && ...)> {};
template <class A, class B>
struct sendable_tuple<std::pair<A, B>> : std::bool_constant<Sendable<A> && Sendable<B>> {};

template <class T>
constexpr void check_sendable() {
  static_assert(!refers_elsewhere_v<T>,
                "mproc: a pointer, reference, span or string_view cannot cross a process boundary: "
                "its target does not travel with it. Send the value itself (std::vector, std::string).");
  // Not for a pointer again: the advice below would contradict the one above.
  static_assert(refers_elsewhere_v<T> || Sendable<T>,
                "mproc: this type cannot cross a process boundary. Make it trivially copyable, or "
                "give it a cereal serialize(Archive&) member (and a default constructor), or use "
                "mproc::ThreadPool, which passes values without serializing them.");
}

[[noreturn]] void rethrow_as_serialization_error(std::string_view what_was_done);

template <class T>
void encode(Writer& w, const T& value) {
  check_sendable<T>();
  if constexpr (is_raw_v<T> || std::is_same_v<T, bool>) {
    w.write(std::addressof(value), sizeof(T));
  } else if constexpr (is_tuple_like<T>::value) {
    std::apply([&w](const auto&... xs) { (encode(w, xs), ...); }, value);
  } else if constexpr (is_raw_sequence<T>::value) {
    auto n = static_cast<std::uint64_t>(value.size());
    std::size_t bytes = value.size() * sizeof(typename T::value_type);
    std::byte* p = w.grow(sizeof n + bytes);
    std::memcpy(p, &n, sizeof n);
    if (bytes) std::memcpy(p + sizeof n, value.data(), bytes);
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

template <class T>
T decode(Reader& r) {
  check_sendable<T>();
  if constexpr (std::is_same_v<T, bool>) {
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
    using E = typename T::value_type;
    std::uint64_t n = 0;
    r.read(&n, sizeof n);
    if (n > r.remaining() / sizeof(E)) throw_bad_length(n, r.remaining());
    T value;
    value.resize(static_cast<std::size_t>(n));
    r.read(value.data(), value.size() * sizeof(E));
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
    using E = typename T::value_type;
    std::uint64_t n = 0;
    r.read(&n, sizeof n);
    if (n > r.remaining() / sizeof(E)) throw_bad_length(n, r.remaining());
    value.resize(static_cast<std::size_t>(n));
    r.read(value.data(), value.size() * sizeof(E));
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
