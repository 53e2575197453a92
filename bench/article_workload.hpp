// article_workload.hpp: the article's workload as the benchmarks use it — 300000 rows of 6 ints
// in [0, 11) from a fixed seed (the same rows for every contender), stored as separate vectors
// like the article's data.tolist(), and the per-row count of values within [4, 8].
// (tools/mproc/matrix.hpp builds the numpy-exact matrix for the demo; here only speed matters.)
#pragma once

#include <algorithm>
#include <random>
#include <vector>

namespace bench {

inline int howmany_within_range(const std::vector<int>& row) {
  return static_cast<int>(std::count_if(row.begin(), row.end(), [](int v) { return v >= 4 && v <= 8; }));
}

inline const std::vector<std::vector<int>>& article_rows() {
  static const auto rows = [] {
    std::mt19937 gen(110);
    std::vector<std::vector<int>> out(300000, std::vector<int>(6));
    for (auto& row : out)
      for (int& v : row) v = static_cast<int>(gen() % 11);
    return out;
  }();
  return rows;
}

// The serial loop each map is measured against: count(row) for every row, kept as map keeps them.
template <class Rows, class Count>
std::vector<int> serial_counts(const Rows& rows, Count count) {
  std::vector<int> out;
  out.reserve(rows.size());
  for (const auto& row : rows) out.push_back(count(row));
  return out;
}

}  // namespace bench
