// The codec: what crosses a process boundary, byte-exact round trips, and decoding that never
// trusts its input.
#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/codec.hpp"

namespace {

using mproc::detail::Reader;
using mproc::detail::Writer;

template <class T>
T round_trip(const T& value) {
  Writer w;
  mproc::detail::encode(w, value);
  Reader r(w.bytes());
  T out = mproc::detail::decode<T>(r);
  EXPECT_TRUE(r.empty()) << "decode left bytes unread";
  return out;
}

struct Plain {
  int a;
  double b;
  char c[3];
};

struct WithSerialize {
  std::string name;
  std::vector<double> values;
  std::optional<int> maybe;
  bool operator==(const WithSerialize&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, values, maybe);
  }
};

}  // namespace

static_assert(mproc::Sendable<int>);
static_assert(mproc::Sendable<Plain>);
static_assert(mproc::Sendable<std::string>);
static_assert(mproc::Sendable<std::tuple<std::vector<int>, int, int>>);
static_assert(mproc::Sendable<WithSerialize>);
static_assert(mproc::Sendable<std::map<std::string, std::set<int>>>);
static_assert(!mproc::Sendable<int*>);
static_assert(!mproc::Sendable<std::string_view>);
// A span of trivially copyable values crosses as its address when it lies in the shared heap,
// checked at run time (SerializationError elsewhere: HeapPayload tests); other spans never.
static_assert(mproc::Sendable<std::span<int>>);
static_assert(!mproc::Sendable<std::span<std::string>>);

TEST(Codec, TriviallyCopyableTypesTravelAsBytes) {
  EXPECT_EQ(round_trip(42), 42);
  EXPECT_EQ(round_trip(std::numeric_limits<std::int64_t>::min()), std::numeric_limits<std::int64_t>::min());
  EXPECT_DOUBLE_EQ(round_trip(3.625), 3.625);
  Plain p{1, 2.5, {'x', 'y', 'z'}};
  Plain q = round_trip(p);
  EXPECT_EQ(q.a, 1);
  EXPECT_EQ(q.c[2], 'z');
  Writer w;
  mproc::detail::encode(w, p);
  EXPECT_EQ(w.size(), sizeof(Plain));
  EXPECT_EQ(round_trip(std::array<int, 3>{1, 2, 3}), (std::array<int, 3>{1, 2, 3}));
  EXPECT_EQ(round_trip(true), true);
}

TEST(Codec, StandardContainersAndUserTypesRoundTrip) {
  EXPECT_EQ(round_trip(std::string("hello")), "hello");
  EXPECT_EQ(round_trip(std::string()), "");
  EXPECT_EQ(round_trip(std::vector<int>{1, 2, 3}), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(round_trip(std::vector<std::vector<int>>{{1}, {}, {2, 3}}),
            (std::vector<std::vector<int>>{{1}, {}, {2, 3}}));
  EXPECT_EQ(round_trip(std::pair<int, std::string>{1, "a"}), (std::pair<int, std::string>{1, "a"}));
  EXPECT_EQ(round_trip(std::tuple<int, std::string, double>{1, "b", 2.5}),
            (std::tuple<int, std::string, double>{1, "b", 2.5}));
  std::map<std::string, int> m{{"a", 1}, {"b", 2}};
  EXPECT_EQ(round_trip(m), m);
  std::unordered_map<int, std::string> um{{1, "x"}};
  EXPECT_EQ(round_trip(um), um);
  EXPECT_EQ(round_trip(std::set<int>{3, 1}), (std::set<int>{1, 3}));
  EXPECT_EQ(round_trip(std::optional<int>{}), std::nullopt);
  EXPECT_EQ(round_trip(std::optional<int>{4}), 4);
  std::variant<int, std::string> v = std::string("z");
  EXPECT_EQ(round_trip(v), v);
  WithSerialize u{"u", {1.5, 2.5}, 7};
  EXPECT_EQ(round_trip(u), u);
  EXPECT_EQ(round_trip(std::vector<bool>{true, false, true}), (std::vector<bool>{true, false, true}));
}

TEST(Codec, TruncatedInputIsASerializationErrorAtEveryLength) {
  WithSerialize u{"name", {1, 2, 3}, 9};
  Writer w;
  mproc::detail::encode(w, u);
  for (std::size_t n = 0; n < w.size(); ++n) {
    Reader r(w.bytes().first(n));
    EXPECT_THROW((void)mproc::detail::decode<WithSerialize>(r), mproc::SerializationError) << "length " << n;
  }
  std::vector<int> v{1, 2, 3, 4};
  Writer w2;
  mproc::detail::encode(w2, v);
  for (std::size_t n = 0; n < w2.size(); ++n) {
    Reader r(w2.bytes().first(n));
    EXPECT_THROW((void)mproc::detail::decode<std::vector<int>>(r), mproc::SerializationError) << "length " << n;
  }
}

TEST(Codec, HugeLengthsAreRejectedBeforeAllocating) {
  Writer w;
  std::uint64_t huge = std::uint64_t{1} << 60;
  w.write(&huge, sizeof huge);
  {
    Reader r(w.bytes());
    EXPECT_THROW((void)mproc::detail::decode<std::vector<int>>(r), mproc::SerializationError);
  }
  {
    Reader r(w.bytes());
    using M = std::map<int, int>;
    EXPECT_THROW((void)mproc::detail::decode<M>(r), mproc::SerializationError);
  }
  {
    Reader r(w.bytes());
    EXPECT_THROW((void)mproc::detail::decode<std::vector<std::string>>(r), mproc::SerializationError);
  }
}

TEST(Codec, InvalidBoolAndVariantIndexAreErrors) {
  Writer w;
  std::uint8_t two = 2;
  w.write(&two, 1);
  Reader r(w.bytes());
  EXPECT_THROW((void)mproc::detail::decode<bool>(r), mproc::SerializationError);
  Writer w2;
  std::int32_t index = 9;
  w2.write(&index, sizeof index);
  Reader r2(w2.bytes());
  EXPECT_THROW((void)(mproc::detail::decode<std::variant<int, double>>(r2)), mproc::SerializationError);
}

namespace {
struct CustomError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct UnregisteredError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
std::exception_ptr exception_round_trip(std::exception_ptr e) {
  Writer w;
  mproc::detail::encode_exception(w, e);
  Reader r(w.bytes());
  return mproc::detail::decode_exception(r);
}
}  // namespace

TEST(Codec, ExceptionsKeepTheirTypeAndMessage) {
  auto e = exception_round_trip(std::make_exception_ptr(std::out_of_range("index 7")));
  try {
    std::rethrow_exception(e);
  } catch (const std::out_of_range& ex) {
    EXPECT_STREQ(ex.what(), "index 7");
  }
  auto se = exception_round_trip(std::make_exception_ptr(std::system_error(ENOENT, std::generic_category(), "open x")));
  try {
    std::rethrow_exception(se);
  } catch (const std::system_error& ex) {
    EXPECT_EQ(ex.code(), std::errc::no_such_file_or_directory);
    EXPECT_NE(std::string(ex.what()).find("open x"), std::string::npos);
  }
  mproc::register_exception<CustomError>();
  EXPECT_THROW(std::rethrow_exception(exception_round_trip(std::make_exception_ptr(CustomError("c")))), CustomError);
  try {
    std::rethrow_exception(exception_round_trip(std::make_exception_ptr(UnregisteredError("u"))));
  } catch (const mproc::RemoteError& ex) {
    EXPECT_NE(ex.type_name().find("UnregisteredError"), std::string::npos);
    EXPECT_STREQ(ex.what(), "u");
  }
  try {
    std::rethrow_exception(exception_round_trip(std::make_exception_ptr(42)));
  } catch (const mproc::RemoteError& ex) {
    EXPECT_EQ(ex.type_name(), "int");
  }
}
