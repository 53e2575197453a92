// matrix.cpp: numpy-exact random matrices, the CSV and .npy readers, and the article's counting.
#include "matrix.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace mproc::tool {
namespace {

// --- numpy's legacy randint ---------------------------------------------------------------------

// One bounded draw of numpy's legacy RandomState.randint (random_bounded_uint64_fill in numpy's
// distributions.c, masked path, which RandomState always takes): a value in [0, rng], found by
// masking MT19937 outputs with the smallest 2^k - 1 covering rng and rejecting those above rng.
// Ranges that fit in 32 bits use one 32-bit output per try; wider ones use two, high word first
// (numpy's mt19937_next64). RandomState(seed) seeds with init_genrand(seed), as std::mt19937 does.
class LegacyBoundedDraw {
 public:
  LegacyBoundedDraw(std::uint32_t seed, std::uint64_t rng) : mt_(seed), rng_(rng), mask_(rng) {
    for (int shift = 1; shift < 64; shift *= 2) mask_ |= mask_ >> shift;
  }

  std::uint64_t operator()() {
    if (rng_ == 0) return 0;  // numpy draws nothing at all for a one-value range
    if (rng_ <= 0xFFFFFFFFu) {
      const auto mask = static_cast<std::uint32_t>(mask_);
      std::uint32_t value;
      do value = next32() & mask;
      while (value > rng_);
      return value;
    }
    if (rng_ == UINT64_MAX) return next64();
    std::uint64_t value;
    do value = next64() & mask_;
    while (value > rng_);
    return value;
  }

 private:
  std::uint32_t next32() { return static_cast<std::uint32_t>(mt_()); }
  std::uint64_t next64() {
    const std::uint64_t high = next32();  // drawn first: a separate statement fixes the order
    return high << 32 | next32();
  }

  std::mt19937 mt_;
  std::uint64_t rng_;
  std::uint64_t mask_;
};

std::uint32_t checked_seed(std::int64_t seed, const char* caller) {
  if (seed < 0 || seed > std::int64_t{0xFFFFFFFF})
    throw std::invalid_argument(std::string(caller) + ": seed " + std::to_string(seed) +
                                " is outside [0, 4294967295], the seeds numpy's RandomState takes");
  return static_cast<std::uint32_t>(seed);
}

// high - 1 - low, computed without overflow; requires high > low.
std::uint64_t inclusive_range(std::int64_t low, std::int64_t high, const char* caller) {
  if (high <= low)
    throw std::invalid_argument(std::string(caller) + ": high (" + std::to_string(high) +
                                ") must be greater than low (" + std::to_string(low) + ")");
  return static_cast<std::uint64_t>(high) - static_cast<std::uint64_t>(low) - 1;
}

// --- shapes -------------------------------------------------------------------------------------

// Whether a Matrix of this shape stays within kMaxMatrixBytes (no overflow on any input).
bool shape_fits(std::size_t rows, std::size_t cols) {
  constexpr std::size_t per_row = sizeof(std::vector<int>);
  if (rows > kMaxMatrixBytes / per_row) return false;
  if (rows == 0) return true;
  const std::size_t left = kMaxMatrixBytes - rows * per_row;
  return cols <= left / sizeof(int) / rows;
}

std::string shape_string(std::size_t rows, std::size_t cols) {
  return "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")";
}

// --- file errors --------------------------------------------------------------------------------

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::runtime_error(path + ": " + problem);
}

// A token as it may appear in a one-line message: quoted, at most 24 bytes, and with every byte
// that is not printable ASCII written as \xNN.
std::string shown(std::string_view token) {
  constexpr std::size_t kMaxShown = 24;
  std::string out = "'";
  for (std::size_t i = 0; i < token.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(token[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  if (token.size() > kMaxShown) out += "...";
  return out + "'";
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, "is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::string bytes;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    bytes.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (bytes.size() > kMaxMatrixBytes) fail(path, "is too large (over " + std::to_string(kMaxMatrixBytes) + " bytes)");
  }
  if (in.bad()) fail(path, "read error");
  return bytes;
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// --- CSV ----------------------------------------------------------------------------------------

int parse_csv_value(const std::string& path, std::string_view field, std::size_t line, std::size_t column) {
  const std::string where = "line " + std::to_string(line) + ", column " + std::to_string(column);
  const std::string_view token = trim(field);
  if (token.empty()) fail(path, where + ": empty value");
  std::string_view digits = token;
  if (digits.front() == '+') {  // from_chars takes '-' but not '+', which Python's int() allows
    digits.remove_prefix(1);
    if (digits.empty() || digits.front() < '0' || digits.front() > '9')
      fail(path, where + ": " + shown(token) + " is not an integer");
  }
  int value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec == std::errc::invalid_argument || end != digits.data() + digits.size())
    fail(path, where + ": " + shown(token) + " is not an integer");
  if (ec == std::errc::result_out_of_range) fail(path, where + ": " + shown(token) + " does not fit in int");
  return value;
}

Matrix load_csv(const std::string& path, std::string_view text) {
  if (text.empty()) fail(path, "file is empty");
  Matrix matrix;
  std::size_t line_number = 0;
  std::size_t first_blank = 0;  // a blank line is an error unless only blank lines follow it
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t newline = std::min(text.find('\n', pos), text.size());
    const std::string_view line = text.substr(pos, newline - pos);
    pos = newline + 1;
    ++line_number;
    if (trim(line).empty()) {
      if (first_blank == 0) first_blank = line_number;
      continue;
    }
    if (first_blank != 0) fail(path, "line " + std::to_string(first_blank) + " is empty");

    std::vector<int> row;
    row.reserve(matrix.cols);
    for (std::size_t start = 0;;) {
      const std::size_t comma = line.find(',', start);
      row.push_back(parse_csv_value(path, line.substr(start, comma - start), line_number, row.size() + 1));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    if (matrix.rows == 0) {
      matrix.cols = row.size();
    } else if (row.size() != matrix.cols) {
      fail(path, "line " + std::to_string(line_number) + " has " + std::to_string(row.size()) + " values, expected " +
                     std::to_string(matrix.cols));
    }
    if (!shape_fits(matrix.rows + 1, matrix.cols))
      fail(path, "matrix is too large (over " + std::to_string(kMaxMatrixBytes) + " bytes)");
    matrix.data.push_back(std::move(row));
    ++matrix.rows;
  }
  if (matrix.rows == 0) fail(path, "file has no values, only blank lines");
  return matrix;
}

// --- .npy ---------------------------------------------------------------------------------------

constexpr std::string_view kNpyMagic{"\x93NUMPY", 6};

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::uint64_t> shape;
};

// Parses the header dict that np.save writes, e.g.
//   {'descr': '<i8', 'fortran_order': False, 'shape': (3, 4), }
// This is the subset of Python literal syntax numpy itself writes (and reads back with
// ast.literal_eval): exactly the three keys, string / bool / tuple-of-int values.
class NpyHeaderParser {
 public:
  NpyHeaderParser(const std::string& path, std::string_view text) : path_(path), text_(text) {}

  NpyHeader parse() {
    NpyHeader header;
    bool seen_descr = false, seen_order = false, seen_shape = false;
    expect('{');
    while (!eat('}')) {
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        once(seen_descr, key);
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == '[')
          bad("structured dtypes (a 'descr' list) are not supported; need an integer dtype");
        header.descr = string_literal();
      } else if (key == "fortran_order") {
        once(seen_order, key);
        header.fortran_order = boolean();
      } else if (key == "shape") {
        once(seen_shape, key);
        header.shape = int_tuple();
      } else {
        bad("unexpected key " + shown(key));
      }
      if (!eat(',')) {
        expect('}');
        break;
      }
    }
    skip_space();
    if (pos_ != text_.size()) {
      std::string_view rest = text_.substr(pos_);
      while (is_blank(rest.back()) || rest.back() == '\n') rest.remove_suffix(1);
      bad("unexpected " + shown(rest) + " after the dict");
    }
    if (!seen_descr) bad("no 'descr'");
    if (!seen_order) bad("no 'fortran_order'");
    if (!seen_shape) bad("no 'shape'");
    return header;
  }

 private:
  [[noreturn]] void bad(const std::string& problem) const { fail(path_, "bad .npy header: " + problem); }
  void once(bool& seen, const std::string& key) const {
    if (seen) bad("key " + shown(key) + " appears twice");
    seen = true;
  }
  void skip_space() {
    while (pos_ < text_.size() && (is_blank(text_[pos_]) || text_[pos_] == '\n')) ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (eat(c)) return;
    if (pos_ == text_.size()) bad(std::string("ends where '") + c + "' was expected");
    bad(std::string("expected '") + c + "' at " + shown(text_.substr(pos_)));
  }
  std::string string_literal() {
    skip_space();
    if (pos_ == text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"'))
      bad("expected a string at " + shown(text_.substr(pos_)));
    const char quote = text_[pos_++];
    const std::size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) bad("unterminated string");
    std::string value(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return value;
  }
  bool boolean() {
    skip_space();
    for (const auto& [word, value] :
         {std::pair{std::string_view("True"), true}, std::pair{std::string_view("False"), false}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    bad("'fortran_order' is not True or False");
  }
  std::vector<std::uint64_t> int_tuple() {
    expect('(');
    std::vector<std::uint64_t> dims;
    while (!eat(')')) {
      skip_space();
      std::uint64_t dim = 0;
      const char* first = text_.data() + pos_;
      const char* last = text_.data() + text_.size();
      const auto [end, ec] = std::from_chars(first, last, dim);
      if (ec == std::errc::result_out_of_range) bad("'shape' has a dimension too large");
      if (ec != std::errc{}) bad("'shape' is not a tuple of non-negative integers");
      pos_ += static_cast<std::size_t>(end - first);
      if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2 wrote longs as 3L
      dims.push_back(dim);
      if (!eat(',')) {
        expect(')');
        break;
      }
    }
    return dims;
  }

  const std::string& path_;
  std::string_view text_;
  std::size_t pos_ = 0;
};

struct IntType {
  std::size_t size = 0;
  bool is_signed = false;
  bool big_endian = false;
};

IntType parse_dtype(const std::string& path, std::string_view descr) {
  const auto unsupported = [&](const std::string& why) {
    fail(path, "unsupported dtype " + shown(descr) + " (" + why +
                   "; need an integer dtype: i1, i2, i4, i8, u1, u2, u4 or u8)");
  };
  IntType type;
  type.big_endian = std::endian::native == std::endian::big;
  std::string_view rest = descr;
  if (!rest.empty() && (rest.front() == '<' || rest.front() == '>' || rest.front() == '|' || rest.front() == '=')) {
    if (rest.front() == '<') type.big_endian = false;
    if (rest.front() == '>') type.big_endian = true;
    rest.remove_prefix(1);
  }
  if (rest.empty()) unsupported("no type");
  if (rest.front() != 'i' && rest.front() != 'u') unsupported("not an integer type");
  type.is_signed = rest.front() == 'i';
  rest.remove_prefix(1);
  if (rest != "1" && rest != "2" && rest != "4" && rest != "8") unsupported("bad size");
  type.size = static_cast<std::size_t>(rest.front() - '0');
  return type;
}

std::int64_t read_value(const unsigned char* p, const IntType& type, bool& fits) {
  std::uint64_t raw = 0;
  for (std::size_t i = 0; i < type.size; ++i) {
    const std::size_t byte = type.big_endian ? i : type.size - 1 - i;
    raw = raw << 8 | p[byte];
  }
  if (!type.is_signed) {
    fits = raw <= static_cast<std::uint64_t>(INT_MAX);
    return fits ? static_cast<std::int64_t>(raw) : 0;
  }
  const unsigned bits = static_cast<unsigned>(type.size * 8);
  if (bits < 64 && (raw >> (bits - 1)) & 1) raw |= ~std::uint64_t{0} << bits;  // sign-extend
  const auto value = static_cast<std::int64_t>(raw);
  fits = value >= INT_MIN && value <= INT_MAX;
  return value;
}

std::string raw_value_string(const unsigned char* p, const IntType& type) {
  std::uint64_t raw = 0;
  for (std::size_t i = 0; i < type.size; ++i) raw = raw << 8 | p[type.big_endian ? i : type.size - 1 - i];
  if (!type.is_signed) return std::to_string(raw);
  bool unused = false;
  return std::to_string(read_value(p, type, unused));
}

Matrix load_npy(const std::string& path, std::string_view bytes) {
  if (bytes.substr(0, kNpyMagic.size()) != kNpyMagic) fail(path, "not a .npy file (bad magic; expected \\x93NUMPY)");
  if (bytes.size() < 8) fail(path, ".npy file is truncated inside its version");
  const auto major = static_cast<unsigned char>(bytes[6]);
  const auto minor = static_cast<unsigned char>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0)
    fail(path, "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                   " (1.0, 2.0 and 3.0 are)");
  const std::size_t length_size = major == 1 ? 2 : 4;
  if (bytes.size() < 8 + length_size) fail(path, ".npy file is truncated inside its header length");
  std::size_t header_length = 0;
  for (std::size_t i = 0; i < length_size; ++i)  // little endian
    header_length |= std::size_t{static_cast<unsigned char>(bytes[8 + i])} << (8 * i);
  const std::size_t header_start = 8 + length_size;
  if (header_length > bytes.size() - header_start)
    fail(path, ".npy header is truncated: it says " + std::to_string(header_length) + " bytes, the file has " +
                   std::to_string(bytes.size() - header_start));

  const NpyHeader header = NpyHeaderParser(path, bytes.substr(header_start, header_length)).parse();
  const IntType type = parse_dtype(path, header.descr);
  if (header.shape.size() != 2) {
    std::string shape = "(";
    for (std::size_t i = 0; i < header.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(header.shape[i]);
    fail(path, "array is " + std::to_string(header.shape.size()) + "-D with shape " + shape +
                   (header.shape.size() == 1 ? ",)" : ")") + ", expected a 2-D matrix");
  }
  const std::size_t rows = header.shape[0], cols = header.shape[1];
  if (rows == 0 || cols == 0) fail(path, "array is empty (shape " + shape_string(rows, cols) + ")");
  if (!shape_fits(rows, cols))
    fail(path, "shape " + shape_string(rows, cols) + " is too large (over " + std::to_string(kMaxMatrixBytes) +
                   " bytes in memory)");

  const std::string_view data = bytes.substr(header_start + header_length);
  const std::size_t needed = rows * cols * type.size;  // no overflow: shape_fits bounds it
  if (data.size() != needed)
    fail(path, std::string(data.size() < needed ? "data is truncated" : "data is too long") + ": shape " +
                   shape_string(rows, cols) + " of " + header.descr + " needs " + std::to_string(needed) +
                   " bytes, the file has " + std::to_string(data.size()));

  Matrix matrix{rows, cols, std::vector<std::vector<int>>(rows, std::vector<int>(cols))};
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  for (std::size_t k = 0; k < rows * cols; ++k, p += type.size) {
    const std::size_t r = header.fortran_order ? k % rows : k / cols;
    const std::size_t c = header.fortran_order ? k / rows : k % cols;
    bool fits = false;
    const std::int64_t value = read_value(p, type, fits);
    if (!fits)
      fail(path, "value " + raw_value_string(p, type) + " at row " + std::to_string(r) + ", column " +
                     std::to_string(c) + " does not fit in int");
    matrix.data[r][c] = static_cast<int>(value);
  }
  return matrix;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::vector<std::int64_t> randint(std::int64_t low, std::int64_t high, std::size_t count, std::int64_t seed) {
  const std::uint64_t range = inclusive_range(low, high, "randint");
  if (count > kMaxMatrixBytes / sizeof(std::int64_t))
    throw std::invalid_argument("randint: count " + std::to_string(count) + " is too large");
  LegacyBoundedDraw draw(checked_seed(seed, "randint"), range);
  std::vector<std::int64_t> values(count);
  for (auto& value : values)  // modular addition: exact for every in-range result, as numpy's
    value = static_cast<std::int64_t>(static_cast<std::uint64_t>(low) + draw());
  return values;
}

Matrix random_matrix(std::size_t rows, std::size_t cols, std::int64_t low, std::int64_t high, std::int64_t seed) {
  if (rows == 0 || cols == 0)
    throw std::invalid_argument("random_matrix: shape " + shape_string(rows, cols) +
                                " is empty; rows and cols must be at least 1");
  if (!shape_fits(rows, cols))
    throw std::invalid_argument("random_matrix: shape " + shape_string(rows, cols) + " is too large (over " +
                                std::to_string(kMaxMatrixBytes) + " bytes in memory)");
  const std::uint64_t range = inclusive_range(low, high, "random_matrix");
  if (low < INT_MIN || high - 1 > INT_MAX)
    throw std::invalid_argument("random_matrix: values in [" + std::to_string(low) + ", " + std::to_string(high) +
                                ") do not all fit in int");
  LegacyBoundedDraw draw(checked_seed(seed, "random_matrix"), range);
  Matrix matrix{rows, cols, std::vector<std::vector<int>>(rows, std::vector<int>(cols))};
  for (auto& row : matrix.data)
    for (int& value : row) value = static_cast<int>(low + static_cast<std::int64_t>(draw()));  // draw() <= 2^32 - 1
  return matrix;
}

Matrix load_matrix(const std::string& path) {
  const std::string bytes = read_file(path);
  const bool npy = (!bytes.empty() && bytes.front() == kNpyMagic.front()) || ends_with(path, ".npy");
  return npy ? load_npy(path, bytes) : load_csv(path, bytes);
}

int howmany_within_range(const std::vector<int>& row, int minimum, int maximum) {
  return static_cast<int>(std::count_if(row.begin(), row.end(), [=](int n) { return minimum <= n && n <= maximum; }));
}

int howmany_within_range_rowonly(const std::vector<int>& row) { return howmany_within_range(row, 4, 8); }

std::vector<int> count_serial(const Matrix& matrix, int minimum, int maximum) {
  std::vector<int> counts;
  counts.reserve(matrix.data.size());
  for (const auto& row : matrix.data) counts.push_back(howmany_within_range(row, minimum, maximum));
  return counts;
}

}  // namespace mproc::tool
