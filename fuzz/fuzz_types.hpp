// fuzz_types.hpp: the types the codec fuzzer decodes, shared with make_corpus so that every seed
// is a valid encoding of the type its first byte selects.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

namespace mproc_fuzz {

// A user type through cereal: what a serialize(Archive&) member gets from a hostile frame.
struct Record {
  std::string name;
  std::vector<double> values;
  std::optional<std::int32_t> tag;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, values, tag);
  }
};

using VectorOfStrings = std::vector<std::string>;
using Map = std::map<std::string, std::int64_t>;
using Tuple = std::tuple<int, std::string, double, bool>;
using Variant = std::variant<int, std::string, std::vector<double>>;
using Nested = std::vector<std::pair<std::string, std::set<std::int32_t>>>;
using Records = std::vector<Record>;

// The first byte of an input picks what the rest is decoded as: kinds[byte % kind_count].
enum class Kind : std::uint8_t { vector_of_strings, map, tuple, variant, exception, nested, records, count };
inline constexpr unsigned kind_count = static_cast<unsigned>(Kind::count);

// fuzz_wire's inputs: [mode][type][count][bytes]; the mode byte picks what the bytes are, the
// type byte their types (see fuzz_wire.cpp), count (mod 17) how many items the chunk holds.
enum class WireMode : std::uint8_t { results, chunk, frames };

}  // namespace mproc_fuzz
