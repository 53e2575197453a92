// matrix.hpp: Matrix, the article's workload — random_matrix() (bit-exact with numpy's
// RandomState.randint), load_matrix() (CSV or .npy), howmany_within_range() and count_serial().
//
// Used by the `mproc` command and the benchmarks, never by the library itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mproc::tool {

// A dense matrix of ints, stored as one vector per row, as the article's `data.tolist()`: a Pool
// is given rows as its items, so each row must be a value of its own. rows == data.size() and
// every row has cols values.
struct Matrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<std::vector<int>> data;
};

// The most memory a Matrix may need (one std::vector per row plus the values). random_matrix()
// and load_matrix() refuse shapes above it rather than try to allocate them.
inline constexpr std::size_t kMaxMatrixBytes = std::size_t{4} << 30;

// The first `count` values of numpy's legacy `RandomState(seed).randint(low, high, size=count)`
// (default dtype int64), bit for bit: MT19937 seeded as std::mt19937(seed), bounded by masked
// rejection, ranges wider than 32 bits drawn from two 32-bit outputs (high word first).
// Throws std::invalid_argument when high <= low or seed is outside [0, 2^32 - 1] (as numpy).
[[nodiscard]] std::vector<std::int64_t> randint(std::int64_t low, std::int64_t high, std::size_t count,
                                                std::int64_t seed);

// numpy's `RandomState(seed).randint(low, high, size=[rows, cols])`, row by row, as ints.
// Throws std::invalid_argument naming the problem when rows or cols is 0 or the shape exceeds
// kMaxMatrixBytes, when high <= low, when [low, high) does not fit in int, or for a bad seed.
[[nodiscard]] Matrix random_matrix(std::size_t rows, std::size_t cols, std::int64_t low, std::int64_t high,
                                   std::int64_t seed);

// Reads a matrix from a .npy file (detected by its magic `\x93NUMPY`, or by a .npy name) or else
// from CSV: comma-separated integers, one row per line, every row the same length.
// .npy: format 1.0, 2.0 or 3.0; a 2-D array of any integer dtype (i1..i8, u1..u8, either byte
// order), C or Fortran order. Every value must fit in int.
// Throws std::runtime_error with a one-line message naming the file and the problem (for example
// "data.csv: line 3 has 5 values, expected 6") for any file it cannot read in full.
[[nodiscard]] Matrix load_matrix(const std::string& path);

// The article's task: how many values of `row` lie within [minimum, maximum].
[[nodiscard]] int howmany_within_range(const std::vector<int>& row, int minimum = 4, int maximum = 8);

// The article's one-argument variant for Pool.map: bounds fixed at 4 and 8. A plain function
// (no defaults needed at the call) so that its address can be sent to a forked worker.
[[nodiscard]] int howmany_within_range_rowonly(const std::vector<int>& row);

// howmany_within_range() of every row, in order, in this thread: the reference result.
[[nodiscard]] std::vector<int> count_serial(const Matrix& matrix, int minimum = 4, int maximum = 8);

}  // namespace mproc::tool
