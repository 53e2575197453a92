// fuzz_codec: libFuzzer target for the codec's decoder. The first byte picks a type, the rest is
// decoded as it. A decoder given any bytes may throw mproc::SerializationError (or, at worst,
// another std::exception); it must never crash, leak, hang, read out of bounds or allocate
// without bound. A value that does decode must encode to bytes that decode to the same value.
// MPROC_FUZZ_STRICT=1 in the environment also rejects any exception but SerializationError.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <span>

#include "fuzz_types.hpp"
#include "mproc/codec.hpp"

namespace {

using mproc::detail::Reader;
using mproc::detail::Writer;

bool same_bytes(const Writer& a, const Writer& b) {
  auto x = a.bytes(), y = b.bytes();
  return std::equal(x.begin(), x.end(), y.begin(), y.end());
}

// Compares encodings, not values: a NaN decoded from the input must not count as a change.
template <class T>
void round_trip(std::span<const std::byte> bytes) {
  Reader r(bytes);
  T value = mproc::detail::decode<T>(r);
  Writer first;
  mproc::detail::encode(first, value);
  Reader again(first.bytes());
  T copy = mproc::detail::decode<T>(again);
  if (!again.empty()) std::abort();
  Writer second;
  mproc::detail::encode(second, copy);
  if (!same_bytes(first, second)) std::abort();
}

void exception_round_trip(std::span<const std::byte> bytes) {
  Reader r(bytes);
  std::exception_ptr e = mproc::detail::decode_exception(r);
  if (!e) std::abort();
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    (void)ex.what();  // a rebuilt exception's message must be readable
  }
  Writer first;
  mproc::detail::encode_exception(first, e);
  Reader again(first.bytes());
  Writer second;
  mproc::detail::encode_exception(second, mproc::detail::decode_exception(again));
  if (!again.empty() || !same_bytes(first, second)) std::abort();
}

void decode_as(mproc_fuzz::Kind kind, std::span<const std::byte> bytes) {
  using namespace mproc_fuzz;
  switch (kind) {
    case Kind::vector_of_strings:
      return round_trip<VectorOfStrings>(bytes);
    case Kind::map:
      return round_trip<Map>(bytes);
    case Kind::tuple:
      return round_trip<Tuple>(bytes);
    case Kind::variant:
      return round_trip<Variant>(bytes);
    case Kind::exception:
      return exception_round_trip(bytes);
    case Kind::nested:
      return round_trip<Nested>(bytes);
    case Kind::records:
      return round_trip<Records>(bytes);
    case Kind::count:
      break;
  }
}

const bool strict = std::getenv("MPROC_FUZZ_STRICT") != nullptr;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  auto kind = static_cast<mproc_fuzz::Kind>(data[0] % mproc_fuzz::kind_count);
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  try {
    decode_as(kind, bytes);
  } catch (const mproc::SerializationError&) {
    // The expected refusal of a malformed frame.
  } catch (const std::exception&) {
    if (strict) throw;
  }
  // Anything else propagates and libFuzzer reports it as a crash.
  return 0;
}
