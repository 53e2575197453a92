// test_matrix.cpp: tools/mproc/matrix — random_matrix() and randint() bit for bit against numpy,
// the CSV and .npy readers (every malformed input a one-line error naming the file and problem),
// and the article's counting.
//
// The expected numbers were computed once with numpy 1.24 (`np.random.RandomState(seed)
// .randint(low, high, size=...)`) and are embedded here, so the tests need no Python.
#include "matrix.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mproc::tool {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::int64_t kInt64Min = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

// sum over i of (i + 1) * value[i], modulo 2^64: sensitive to every value and to its position.
template <class T>
std::uint64_t checksum(const std::vector<T>& values) {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < values.size(); ++i)
    sum += (i + 1) * static_cast<std::uint64_t>(static_cast<std::int64_t>(values[i]));
  return sum;
}

std::vector<int> flatten(const Matrix& m) {
  std::vector<int> values;
  for (const auto& row : m.data) values.insert(values.end(), row.begin(), row.end());
  return values;
}

// Checks the invariants every Matrix keeps: rows == data.size(), every row has cols values.
void expect_well_formed(const Matrix& m) {
  ASSERT_EQ(m.data.size(), m.rows);
  for (const auto& row : m.data) ASSERT_EQ(row.size(), m.cols);
}

// --- random_matrix and randint against numpy ----------------------------------------------------

TEST(RandomMatrix, ArticleMatrixMatchesNumpy) {
  const Matrix m = random_matrix(300000, 6, 0, 11, 110);
  expect_well_formed(m);
  EXPECT_EQ(m.rows, 300000u);
  EXPECT_EQ(m.cols, 6u);
  EXPECT_EQ(m.data[0], (std::vector<int>{0, 3, 9, 0, 0, 0}));
  std::int64_t sum = 0;
  for (const auto& row : m.data) sum = std::accumulate(row.begin(), row.end(), sum);
  EXPECT_EQ(sum, 9006923);

  const std::vector<int> counts = count_serial(m, 4, 8);
  ASSERT_EQ(counts.size(), 300000u);
  EXPECT_EQ(std::vector<int>(counts.begin(), counts.begin() + 10), (std::vector<int>{0, 3, 2, 1, 1, 3, 2, 5, 2, 2}));
  EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), std::int64_t{0}), 818749);
}

struct MatrixCase {
  std::int64_t seed;
  std::size_t rows, cols;
  std::int64_t low, high;
  std::vector<int> first8;
  std::int64_t sum;
  std::uint64_t checksum;
};

// np.random.RandomState(seed).randint(low, high, size=[rows, cols]): its first 8 values
// (row-major), its sum and checksum() of all of them.
const std::vector<MatrixCase> kMatrixCases = {
    {0, 1000, 7, 0, 11, {5, 0, 3, 3, 7, 9, 3, 5}, 34893, 122507248ULL},
    {1, 1000, 7, -5, 5, {0, 3, 4, 0, -5, -5, -4, 2}, -3347, 18446744073697976273ULL},
    // high - low == 1: numpy draws nothing and every value is low.
    {42, 500, 3, 7, 8, {7, 7, 7, 7, 7, 7, 7, 7}, 10500, 7880250ULL},
    {99, 1000, 7, 3, 4, {3, 3, 3, 3, 3, 3, 3, 3}, 21000, 73510500ULL},
    {4294967295, 1000, 7, 0, 2, {1, 0, 0, 1, 0, 0, 0, 0}, 3495, 12287375ULL},
    {12345,
     1000,
     7,
     -1000000,
     1000000,
     {790434, -922715, 965341, 443969, 396132, -103575, 970174, 134974},
     -27171178,
     18446743915435082059ULL},
    // A range of 2^32 - 1 values (mask 0xFFFFFFFF with rejection of one value) ...
    {7,
     1000,
     7,
     INT_MIN,
     INT_MAX,
     {-1819742033, -1171069756, 1202242073, -777508362, -264530365, 2053951699, 959775639, -190761369},
     42219408581,
     271380809731452ULL},
    // ... and all of int: every 32-bit output is taken as is.
    {8,
     1000,
     7,
     INT_MIN,
     std::int64_t{INT_MAX} + 1,
     {1603867075, -2099747500, 2012366833, -1119098519, 1585678469, -526060582, 132524168, 1359190867},
     -54743016691,
     18446550279371015949ULL},
    {2024, 1000, 7, 100, 357, {236, 196, 228, 127, 136, 283, 227, 327}, 1588674, 5582758871ULL},
    {110, 300, 6, 0, 11, {0, 3, 9, 0, 0, 0, 6, 2}, 8710, 7757112ULL},
};

TEST(RandomMatrix, MatchesNumpyForOtherSeedsAndRanges) {
  for (const auto& c : kMatrixCases) {
    SCOPED_TRACE("seed " + std::to_string(c.seed) + ", [" + std::to_string(c.low) + ", " + std::to_string(c.high) +
                 ")");
    const Matrix m = random_matrix(c.rows, c.cols, c.low, c.high, c.seed);
    expect_well_formed(m);
    const std::vector<int> values = flatten(m);
    EXPECT_EQ(std::vector<int>(values.begin(), values.begin() + 8), c.first8);
    EXPECT_EQ(std::accumulate(values.begin(), values.end(), std::int64_t{0}), c.sum);
    EXPECT_EQ(checksum(values), c.checksum);
    for (int v : values) {
      ASSERT_GE(v, c.low);
      ASSERT_LT(v, c.high);
    }
  }
}

TEST(RandomMatrix, IsRandintReshaped) {
  for (const auto& c : kMatrixCases) {
    const std::vector<std::int64_t> flat = randint(c.low, c.high, c.rows * c.cols, c.seed);
    const std::vector<int> values = flatten(random_matrix(c.rows, c.cols, c.low, c.high, c.seed));
    ASSERT_EQ(flat.size(), values.size());
    for (std::size_t i = 0; i < flat.size(); ++i) ASSERT_EQ(flat[i], values[i]) << "at " << i;
  }
}

struct RandintCase {
  std::int64_t seed, low, high;
  std::vector<std::int64_t> first4;
  std::uint64_t checksum;  // of np.random.RandomState(seed).randint(low, high, size=1000)
};

TEST(Randint, WideRangesMatchNumpy) {
  // Ranges needing more than 32 bits: numpy combines two 32-bit outputs, high word first.
  const std::vector<RandintCase> cases = {
      {5, 0, std::int64_t{1} << 40, {425438759118, 1030067709629, 989404716150, 622681974857}, 273257571246483980ULL},
      {6,
       -(std::int64_t{1} << 62),
       std::int64_t{1} << 62,
       {2635304568670243529, 1512260472607057876, 1313945438037146989, -3842519019789779606},
       14976200111259166145ULL},
      {9,
       kInt64Min,
       kInt64Max,
       {-9032002594820763300, 34580184003183093, -77968886344034248, -6754652892777147498},
       8382825639808936553ULL},
      {10,
       0,
       (std::int64_t{1} << 32) + 1,  // just over 32 bits: the 64-bit path
       {2124247567, 1902734705, 108111773, 1140597833},
       1028161457737873ULL},
      {11,
       kInt64Min,
       kInt64Max - (std::int64_t{1} << 40) + 1,
       {-5897983123618230593, -8864117261142909861, -678498381169848393, 4149298557807026508},
       6064604639978166267ULL},
      {12,
       0,
       std::int64_t{1} << 32,  // exactly 32 bits: still the 32-bit path
       {662124363, 1916507803, 3178489222, 3751169277},
       1060517121653167ULL},
      {13, -3, std::int64_t{1} << 33, {769458326, 3258093495, 2608519803, 5756747335}, 2082331237111501ULL},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("seed " + std::to_string(c.seed));
    const std::vector<std::int64_t> values = randint(c.low, c.high, 1000, c.seed);
    ASSERT_EQ(values.size(), 1000u);
    EXPECT_EQ(std::vector<std::int64_t>(values.begin(), values.begin() + 4), c.first4);
    EXPECT_EQ(checksum(values), c.checksum);
  }
}

TEST(Randint, CountZeroIsEmpty) { EXPECT_TRUE(randint(0, 10, 0, 1).empty()); }

template <class F>
std::string invalid_argument_of(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "no std::invalid_argument was thrown";
  return {};
}

TEST(RandomMatrix, RejectsBadArgumentsNamingTheProblem) {
  EXPECT_THAT(invalid_argument_of([] { (void)random_matrix(0, 6, 0, 11, 1); }),
              HasSubstr("rows and cols must be at least 1"));
  EXPECT_THAT(invalid_argument_of([] { (void)random_matrix(6, 0, 0, 11, 1); }), HasSubstr("shape (6, 0) is empty"));
  EXPECT_THAT(invalid_argument_of([] { (void)random_matrix(SIZE_MAX, 6, 0, 11, 1); }), HasSubstr("too large"));
  EXPECT_THAT(invalid_argument_of([] { (void)random_matrix(6, SIZE_MAX, 0, 11, 1); }), HasSubstr("too large"));
  EXPECT_THAT(invalid_argument_of([] { (void)random_matrix(1 << 20, 1 << 20, 0, 11, 1); }), HasSubstr("too large"));
  EXPECT_THAT(invalid_argument_of([] { (void)random_matrix(3, 3, 5, 5, 1); }),
              HasSubstr("high (5) must be greater than low (5)"));
  EXPECT_THAT(invalid_argument_of([] { (void)random_matrix(3, 3, 5, 2, 1); }),
              HasSubstr("high (2) must be greater than low (5)"));
  EXPECT_THAT(invalid_argument_of([] { (void)random_matrix(3, 3, std::int64_t{INT_MIN} - 1, 0, 1); }),
              HasSubstr("do not all fit in int"));
  EXPECT_THAT(invalid_argument_of([] { (void)random_matrix(3, 3, 0, std::int64_t{INT_MAX} + 2, 1); }),
              HasSubstr("do not all fit in int"));
  EXPECT_THAT(invalid_argument_of([] { (void)random_matrix(3, 3, 0, 11, -1); }),
              HasSubstr("seed -1 is outside [0, 4294967295]"));
  EXPECT_THAT(invalid_argument_of([] { (void)random_matrix(3, 3, 0, 11, std::int64_t{1} << 32); }),
              HasSubstr("seed 4294967296 is outside"));
  EXPECT_THAT(invalid_argument_of([] { (void)randint(1, 1, 3, 0); }),
              HasSubstr("high (1) must be greater than low (1)"));
  EXPECT_THAT(invalid_argument_of([] { (void)randint(0, 10, SIZE_MAX, 0); }), HasSubstr("too large"));
  EXPECT_THAT(invalid_argument_of([] { (void)randint(0, 10, 3, -5); }), HasSubstr("seed -5"));
}

// --- counting -----------------------------------------------------------------------------------

TEST(HowmanyWithinRange, CountsTheClosedInterval) {
  EXPECT_EQ(howmany_within_range({}, 4, 8), 0);
  EXPECT_EQ(howmany_within_range({3, 4, 5, 8, 9}, 4, 8), 3);
  EXPECT_EQ(howmany_within_range({3, 4, 5, 8, 9}), 3);  // the article's defaults
  EXPECT_EQ(howmany_within_range({5, 5, 5}, 5, 5), 3);
  EXPECT_EQ(howmany_within_range({5, 6, 7}, 8, 4), 0);  // an empty interval
  EXPECT_EQ(howmany_within_range({INT_MIN, 0, INT_MAX}, INT_MIN, INT_MAX), 3);
  EXPECT_EQ(howmany_within_range_rowonly({0, 3, 9, 4, 8, 7}), 3);
}

TEST(CountSerial, OneCountPerRowInOrder) {
  Matrix m{3, 2, {{4, 9}, {0, 1}, {8, 5}}};
  EXPECT_EQ(count_serial(m), (std::vector<int>{1, 0, 2}));
  EXPECT_EQ(count_serial(m, 0, 1), (std::vector<int>{0, 2, 0}));
  EXPECT_TRUE(count_serial(Matrix{}).empty());
}

// --- loading ------------------------------------------------------------------------------------

// A fresh directory for the files a test writes, removed with everything in it at the end.
class LoadMatrix : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "mproc-test-matrix-XXXXXX");
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string write(const std::string& name, std::string_view bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(out.good()) << "cannot write " << path;
    return path;
  }

  // The message of the std::runtime_error load_matrix(path) throws; checks that it is one line
  // that starts with the file's name.
  std::string error_of(const std::string& path) {
    try {
      (void)load_matrix(path);
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_THAT(what, StartsWith(path + ": "));
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      return what;
    }
    ADD_FAILURE() << "load_matrix(" << path << ") did not throw";
    return {};
  }
  std::string error_of_bytes(const std::string& name, std::string_view bytes) { return error_of(write(name, bytes)); }

  std::filesystem::path dir_;
};

// --- CSV ---

TEST_F(LoadMatrix, ReadsCsv) {
  const Matrix m = load_matrix(write("a.csv", "1,2,3\n4,5,6\n"));
  expect_well_formed(m);
  EXPECT_EQ(m.rows, 2u);
  EXPECT_EQ(m.cols, 3u);
  EXPECT_EQ(m.data, (std::vector<std::vector<int>>{{1, 2, 3}, {4, 5, 6}}));
}

TEST_F(LoadMatrix, CsvToleratesWhitespaceSignsCrlfAndAMissingFinalNewline) {
  const std::vector<std::vector<int>> expected{{1, -2, 3}, {-2147483648, 2147483647, 7}};
  EXPECT_EQ(load_matrix(write("b.csv", "1,-2,3\n-2147483648,2147483647,7")).data, expected);
  EXPECT_EQ(load_matrix(write("c.csv", " 1 ,\t-2, +3 \r\n-2147483648 , 2147483647,7\r\n")).data, expected);
  EXPECT_EQ(load_matrix(write("d.csv", "1,-2,3\n-2147483648,2147483647,7\n\n  \n")).data,
            expected);  // blank lines at the end
  const Matrix one = load_matrix(write("e.csv", "42"));
  EXPECT_EQ(one.rows, 1u);
  EXPECT_EQ(one.cols, 1u);
  EXPECT_EQ(one.data, (std::vector<std::vector<int>>{{42}}));
}

TEST_F(LoadMatrix, CsvRoundTripsTheArticleMatrix) {
  const Matrix m = random_matrix(2000, 6, 0, 11, 110);
  std::string text;
  for (const auto& row : m.data) {
    for (std::size_t c = 0; c < row.size(); ++c) text += (c ? "," : "") + std::to_string(row[c]);
    text += '\n';
  }
  const Matrix back = load_matrix(write("article.csv", text));
  EXPECT_EQ(back.rows, m.rows);
  EXPECT_EQ(back.cols, m.cols);
  EXPECT_EQ(back.data, m.data);
}

TEST_F(LoadMatrix, CsvErrorsNameTheFileAndTheProblem) {
  std::string path = write("ragged.csv", "1,2,3,4,5,6\n1,2,3,4,5,6\n1,2,3,4,5\n");
  EXPECT_EQ(error_of(path), path + ": line 3 has 5 values, expected 6");
  path = write("longer.csv", "1,2\n3,4,5\n");
  EXPECT_EQ(error_of(path), path + ": line 2 has 3 values, expected 2");

  EXPECT_THAT(error_of_bytes("empty.csv", ""), HasSubstr("file is empty"));
  EXPECT_THAT(error_of_bytes("blank.csv", "\n \n\t\n"), HasSubstr("no values"));
  EXPECT_THAT(error_of_bytes("word.csv", "1,2\n3,x\n"), HasSubstr("line 2, column 2: 'x' is not an integer"));
  EXPECT_THAT(error_of_bytes("float.csv", "1.5,2\n"), HasSubstr("line 1, column 1: '1.5' is not an integer"));
  EXPECT_THAT(error_of_bytes("suffix.csv", "12abc\n"), HasSubstr("'12abc' is not an integer"));
  EXPECT_THAT(error_of_bytes("inner.csv", "1 2,3\n"), HasSubstr("'1 2' is not an integer"));
  EXPECT_THAT(error_of_bytes("plusminus.csv", "+-5\n"), HasSubstr("'+-5' is not an integer"));
  EXPECT_THAT(error_of_bytes("plus.csv", "+\n"), HasSubstr("'+' is not an integer"));
  EXPECT_THAT(error_of_bytes("minus.csv", "-\n"), HasSubstr("'-' is not an integer"));
  EXPECT_THAT(error_of_bytes("header.csv", "a,b\n1,2\n"), HasSubstr("line 1, column 1: 'a' is not an integer"));
  EXPECT_THAT(error_of_bytes("big.csv", "1,2147483648\n"),
              HasSubstr("line 1, column 2: '2147483648' does not fit in int"));
  EXPECT_THAT(error_of_bytes("small.csv", "-2147483649\n"), HasSubstr("does not fit in int"));
  EXPECT_THAT(error_of_bytes("huge.csv", "99999999999999999999999999\n"), HasSubstr("does not fit in int"));
  EXPECT_THAT(error_of_bytes("hole.csv", "1,,3\n"), HasSubstr("line 1, column 2: empty value"));
  EXPECT_THAT(error_of_bytes("trailing.csv", "1,2,\n"), HasSubstr("line 1, column 3: empty value"));
  EXPECT_THAT(error_of_bytes("gap.csv", "1,2\n\n3,4\n"), HasSubstr("line 2 is empty"));
  EXPECT_THAT(error_of_bytes("lead.csv", "\n1,2\n"), HasSubstr("line 1 is empty"));
  // Binary garbage: escaped, shortened, and still one line.
  const std::string garbage(
      "\x01\x02\xff\r\x7f"
      "abcdefghijklmnopqrstuvwxyz0123456789",
      41);
  EXPECT_THAT(error_of_bytes("garbage.csv", garbage),
              HasSubstr("'\\x01\\x02\\xff\\x0d\\x7fabcdefghijklmnopqrs...' is not an integer"));
}

TEST_F(LoadMatrix, UnreadableFiles) {
  const std::string missing = (dir_ / "missing.csv").string();
  EXPECT_THAT(error_of(missing), HasSubstr("cannot open: No such file or directory"));
  EXPECT_THAT(error_of(dir_.string()), HasSubstr("is a directory"));
}

TEST_F(LoadMatrix, FileWithoutReadPermission) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
  const std::string path = write("secret.csv", "1,2\n");
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  EXPECT_THAT(error_of(path), HasSubstr("cannot open: Permission denied"));
}

// --- .npy ---

// The bytes of a .npy file as np.save writes it: magic, version, header length (2 bytes in
// version 1.0, 4 after), the header dict padded with spaces and a newline to a multiple of 64.
std::string npy_file(std::string_view dict, std::string_view data, int major = 1) {
  const std::size_t length_size = major == 1 ? 2 : 4;
  std::string header(dict);
  while ((6 + 2 + length_size + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  for (std::size_t i = 0; i < length_size; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + std::string(data);
}

std::string npy_dict(std::string_view descr, bool fortran, std::string_view shape) {
  return "{'descr': '" + std::string(descr) + "', 'fortran_order': " + (fortran ? "True" : "False") +
         ", 'shape': " + std::string(shape) + ", }";
}

// value as a `size`-byte two's complement integer in the given byte order.
std::string encode(std::int64_t value, std::size_t size, bool big_endian) {
  std::string bytes(size, '\0');
  const auto bits = static_cast<std::uint64_t>(value);
  for (std::size_t i = 0; i < size; ++i)
    bytes[big_endian ? size - 1 - i : i] = static_cast<char>((bits >> (8 * i)) & 0xff);
  return bytes;
}

// The data of `rows` in C or Fortran order.
std::string encode_matrix(const std::vector<std::vector<std::int64_t>>& rows, std::size_t size, bool big_endian,
                          bool fortran) {
  std::string data;
  const std::size_t n = rows.size(), m = rows[0].size();
  for (std::size_t k = 0; k < n * m; ++k) {
    const std::size_t r = fortran ? k % n : k / m, c = fortran ? k / n : k % m;
    data += encode(rows[r][c], size, big_endian);
  }
  return data;
}

std::vector<unsigned char> unhex(std::string_view hex) {
  std::vector<unsigned char> bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    bytes.push_back(static_cast<unsigned char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return bytes;
}

TEST_F(LoadMatrix, ReadsFilesWrittenByNumpy) {
  // Bytes of np.lib.format.write_array(f, arr, version) for three small arrays.
  struct Case {
    const char* hex;
    std::vector<std::vector<int>> expected;
  };
  const std::vector<Case> cases = {
      // np.array([[1, -2, 3], [4, 5, -6]], dtype='<i8'), version 1.0
      {"934e554d5059010076007b276465736372273a20273c6938272c2027666f727472616e5f6f72646572273a2046"
       "616c73652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020"
       "202020202020202020202020202020202020202020202020202020202020202020202020200a01000000000000"
       "00feffffffffffffff030000000000000004000000000000000500000000000000faffffffffffffff",
       {{1, -2, 3}, {4, 5, -6}}},
      // np.asfortranarray(np.array([[1, 2, 3], [4, 5, -300]], dtype='>i2')), version 2.0
      {"934e554d50590200740000007b276465736372273a20273e6932272c2027666f727472616e5f6f72646572273a"
       "20547275652c20277368617065273a2028322c2033292c207d2020202020202020202020202020202020202020"
       "202020202020202020202020202020202020202020202020202020202020202020202020200a00010004000200"
       "050003fed4",
       {{1, 2, 3}, {4, 5, -300}}},
      // np.array([[255, 0], [7, 8]], dtype='u1'), version 3.0
      {"934e554d50590300740000007b276465736372273a20277c7531272c2027666f727472616e5f6f72646572273a"
       "2046616c73652c20277368617065273a2028322c2032292c207d20202020202020202020202020202020202020"
       "202020202020202020202020202020202020202020202020202020202020202020202020200aff000708",
       {{255, 0}, {7, 8}}},
  };
  int n = 0;
  for (const auto& c : cases) {
    const std::vector<unsigned char> bytes = unhex(c.hex);
    const Matrix m = load_matrix(write("numpy" + std::to_string(n++) + ".npy",
                                       std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())));
    expect_well_formed(m);
    EXPECT_EQ(m.rows, c.expected.size());
    EXPECT_EQ(m.cols, c.expected[0].size());
    EXPECT_EQ(m.data, c.expected);
  }
}

TEST_F(LoadMatrix, ReadsEveryIntegerDtypeByteOrderAndLayout) {
  struct Type {
    char kind;
    std::size_t size;
    std::int64_t min, max;  // the type's range clipped to int
  };
  const std::vector<Type> types = {
      {'i', 1, -128, 127}, {'i', 2, -32768, 32767}, {'i', 4, INT_MIN, INT_MAX}, {'i', 8, INT_MIN, INT_MAX},
      {'u', 1, 0, 255},    {'u', 2, 0, 65535},      {'u', 4, 0, INT_MAX},       {'u', 8, 0, INT_MAX},
  };
  int n = 0;
  for (const Type& t : types) {
    for (char order : {'<', '>', '|'}) {
      if (order == '|' && t.size != 1) continue;  // numpy writes '|' only where order is moot
      for (bool fortran : {false, true}) {
        for (int major : {1, 2, 3}) {
          const std::string descr = std::string(1, order) + t.kind + std::to_string(t.size);
          SCOPED_TRACE(descr + (fortran ? " fortran" : " C") + " v" + std::to_string(major));
          // 3 x 2, not square, so that a transposed read shows.
          const std::vector<std::vector<std::int64_t>> values = {
              {t.min, t.max}, {t.min == 0 ? 1 : -1, 2}, {t.max - 1, t.min + 3}};
          const std::string path = write("t" + std::to_string(n++) + ".npy",
                                         npy_file(npy_dict(descr, fortran, "(3, 2)"),
                                                  encode_matrix(values, t.size, order == '>', fortran), major));
          const Matrix m = load_matrix(path);
          expect_well_formed(m);
          ASSERT_EQ(m.rows, 3u);
          ASSERT_EQ(m.cols, 2u);
          for (std::size_t r = 0; r < 3; ++r)
            for (std::size_t c = 0; c < 2; ++c) EXPECT_EQ(m.data[r][c], values[r][c]);
        }
      }
    }
  }
}

TEST_F(LoadMatrix, NpyRoundTripsTheArticleMatrix) {
  const Matrix m = random_matrix(1000, 6, 0, 11, 110);
  std::vector<std::vector<std::int64_t>> wide;
  for (const auto& row : m.data) wide.emplace_back(row.begin(), row.end());
  const Matrix back = load_matrix(
      write("article.npy", npy_file(npy_dict("<i8", false, "(1000, 6)"), encode_matrix(wide, 8, false, false))));
  EXPECT_EQ(back.data, m.data);
}

TEST_F(LoadMatrix, NpyDetectedByMagicWhateverTheName) {
  const std::string data = encode_matrix({{7, -7}}, 4, false, false);
  const Matrix m = load_matrix(write("data.bin", npy_file(npy_dict("<i4", false, "(1, 2)"), data)));
  EXPECT_EQ(m.data, (std::vector<std::vector<int>>{{7, -7}}));
}

TEST_F(LoadMatrix, NpyHeaderVariantsNumpyAccepts) {
  const std::string data = encode_matrix({{1, 2}}, 8, false, false);
  // Double quotes, keys in another order, no trailing comma, Python 2 longs, no padding.
  for (const std::string& dict : {std::string(R"({"shape": (1, 2), "fortran_order": False, "descr": "<i8"})"),
                                  std::string("{'descr':'<i8','fortran_order':False,'shape':(1L,2L)}")}) {
    SCOPED_TRACE(dict);
    EXPECT_EQ(load_matrix(write("v.npy", npy_file(dict, data))).data, (std::vector<std::vector<int>>{{1, 2}}));
  }
}

TEST_F(LoadMatrix, NpyErrorsNameTheFileAndTheProblem) {
  const std::string good_dict = npy_dict("<i8", false, "(2, 3)");
  const std::string data6 = encode_matrix({{1, 2, 3}, {4, 5, 6}}, 8, false, false);
  const std::string good = npy_file(good_dict, data6);

  // Magic, version, header length.
  EXPECT_THAT(error_of_bytes("magic.npy", "\x93NUMPX" + good.substr(6)), HasSubstr("bad magic"));
  EXPECT_THAT(error_of_bytes("short.npy", "\x93NUM"), HasSubstr("bad magic"));
  EXPECT_THAT(error_of_bytes("text.npy", "1,2,3\n"), HasSubstr("not a .npy file (bad magic"));
  EXPECT_THAT(error_of_bytes("empty.npy", ""), HasSubstr("bad magic"));
  EXPECT_THAT(error_of_bytes("version.npy", "\x93NUMPY\x04" + good.substr(7)),
              HasSubstr("unsupported .npy format version 4.0"));
  EXPECT_THAT(error_of_bytes("minor.npy", std::string("\x93NUMPY\x01\x01", 8) + good.substr(8)),
              HasSubstr("unsupported .npy format version 1.1"));
  EXPECT_THAT(error_of_bytes("noversion.npy", std::string("\x93NUMPY\x01", 7)),
              HasSubstr("truncated inside its version"));
  EXPECT_THAT(error_of_bytes("nolength.npy", std::string("\x93NUMPY\x01\x00\x10", 9)),
              HasSubstr("truncated inside its header length"));
  EXPECT_THAT(error_of_bytes("nolength2.npy", std::string("\x93NUMPY\x02\x00\x10\x00\x00", 11)),
              HasSubstr("truncated inside its header length"));
  EXPECT_THAT(error_of_bytes("cut.npy", good.substr(0, 40)),
              HasSubstr("header is truncated: it says 118 bytes, the file has 30"));

  // The header dict.
  const auto bad_header = [&](const std::string& name, const std::string& dict) {
    return error_of_bytes(name, npy_file(dict, data6));
  };
  EXPECT_THAT(bad_header("list.npy", "[1, 2]"), HasSubstr("bad .npy header: expected '{'"));
  EXPECT_THAT(bad_header("blank.npy", ""), HasSubstr("bad .npy header: ends where '{' was expected"));
  EXPECT_THAT(bad_header("noshape.npy", "{'descr': '<i8', 'fortran_order': False}"),
              HasSubstr("bad .npy header: no 'shape'"));
  EXPECT_THAT(bad_header("nodescr.npy", "{'fortran_order': False, 'shape': (2, 3)}"), HasSubstr("no 'descr'"));
  EXPECT_THAT(bad_header("noorder.npy", "{'descr': '<i8', 'shape': (2, 3)}"), HasSubstr("no 'fortran_order'"));
  EXPECT_THAT(bad_header("extra.npy",
                         "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), "
                         "'x': 1}"),
              HasSubstr("unexpected key 'x'"));
  EXPECT_THAT(bad_header("twice.npy", "{'descr': '<i8', 'descr': '<i8'}"), HasSubstr("key 'descr' appears twice"));
  EXPECT_THAT(bad_header("order.npy", "{'descr': '<i8', 'fortran_order': yes, 'shape': (2, 3), }"),
              HasSubstr("'fortran_order' is not True or False"));
  EXPECT_THAT(bad_header("unterminated.npy", "{'descr': '<i8"), HasSubstr("unterminated string"));
  EXPECT_THAT(bad_header("after.npy", good_dict + " junk"), HasSubstr("'junk' after the dict"));
  EXPECT_THAT(bad_header("open.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3)"),
              HasSubstr("ends where '}' was expected"));
  EXPECT_THAT(bad_header("negative.npy", npy_dict("<i8", false, "(-2, 3)")),
              HasSubstr("'shape' is not a tuple of non-negative integers"));
  EXPECT_THAT(bad_header("dimtoobig.npy", npy_dict("<i8", false, "(99999999999999999999999, 3)")),
              HasSubstr("'shape' has a dimension too large"));
  EXPECT_THAT(bad_header("notuple.npy", npy_dict("<i8", false, "[2, 3]")), HasSubstr("expected '('"));

  // The dtype.
  EXPECT_THAT(bad_header("float.npy", npy_dict("<f8", false, "(2, 3)")),
              HasSubstr("unsupported dtype '<f8' (not an integer type; need an integer dtype"));
  EXPECT_THAT(bad_header("bool.npy", npy_dict("|b1", false, "(2, 3)")), HasSubstr("unsupported dtype '|b1'"));
  EXPECT_THAT(bad_header("i3.npy", npy_dict("<i3", false, "(2, 3)")), HasSubstr("unsupported dtype '<i3' (bad size"));
  EXPECT_THAT(bad_header("i16.npy", npy_dict("<i16", false, "(2, 3)")), HasSubstr("bad size"));
  EXPECT_THAT(bad_header("nodtype.npy", npy_dict("<", false, "(2, 3)")), HasSubstr("no type"));
  EXPECT_THAT(bad_header("struct.npy", "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (2, 3), }"),
              HasSubstr("structured dtypes"));

  // The shape.
  EXPECT_THAT(bad_header("1d.npy", npy_dict("<i8", false, "(6,)")),
              HasSubstr("array is 1-D with shape (6,), expected a 2-D matrix"));
  EXPECT_THAT(bad_header("3d.npy", npy_dict("<i8", false, "(1, 2, 3)")),
              HasSubstr("array is 3-D with shape (1, 2, 3)"));
  EXPECT_THAT(bad_header("0d.npy", npy_dict("<i8", false, "()")), HasSubstr("array is 0-D"));
  EXPECT_THAT(error_of_bytes("norows.npy", npy_file(npy_dict("<i8", false, "(0, 3)"), "")),
              HasSubstr("array is empty (shape (0, 3))"));
  EXPECT_THAT(bad_header("toobig.npy", npy_dict("<i8", false, "(4294967296, 4294967296)")),
              HasSubstr("shape (4294967296, 4294967296) is too large"));

  // The data.
  EXPECT_THAT(error_of_bytes("truncated.npy", good.substr(0, good.size() - 1)),
              HasSubstr("data is truncated: shape (2, 3) of <i8 needs 48 bytes, the file has 47"));
  EXPECT_THAT(error_of_bytes("nodata.npy", npy_file(good_dict, "")),
              HasSubstr("data is truncated: shape (2, 3) of <i8 needs 48 bytes, the file has 0"));
  EXPECT_THAT(error_of_bytes("long.npy", good + "x"),
              HasSubstr("data is too long: shape (2, 3) of <i8 needs 48 bytes, the file has 49"));

  // Values that do not fit in int.
  const auto out_of_range = [&](const std::string& name, std::string_view descr, std::size_t size, bool big,
                                std::int64_t value) {
    return error_of_bytes(name,
                          npy_file(npy_dict(descr, false, "(1, 2)"), encode_matrix({{0, value}}, size, big, false)));
  };
  EXPECT_THAT(out_of_range("u4.npy", "<u4", 4, false, 0x80000000),
              HasSubstr("value 2147483648 at row 0, column 1 does not fit in int"));
  EXPECT_THAT(out_of_range("u4max.npy", ">u4", 4, true, 0xFFFFFFFF),
              HasSubstr("value 4294967295 at row 0, column 1 does not fit in int"));
  EXPECT_THAT(out_of_range("u8.npy", "<u8", 8, false, kInt64Min + 5),
              HasSubstr("value 9223372036854775813 at row 0, column 1"));
  EXPECT_THAT(out_of_range("i8.npy", "<i8", 8, false, std::int64_t{1} << 40),
              HasSubstr("value 1099511627776 at row 0, column 1 does not fit in int"));
  EXPECT_THAT(out_of_range("i8neg.npy", ">i8", 8, true, std::int64_t{INT_MIN} - 1),
              HasSubstr("value -2147483649 at row 0, column 1 does not fit in int"));
  // Fortran order reports the value's place in the matrix, not in the file.
  EXPECT_THAT(error_of_bytes("fortran.npy", npy_file(npy_dict("<i8", true, "(2, 2)"),
                                                     encode_matrix({{0, 1}, {kInt64Max, 3}}, 8, false, true))),
              HasSubstr("value 9223372036854775807 at row 1, column 0"));
}

}  // namespace
}  // namespace mproc::tool
