// stats.hpp: what the benchmarks report besides Google Benchmark's mean: the median of a sample
// of per-call times, which one slow call (a page the VM's host must fault in) cannot move.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace bench {

// The median of v (reordered); v must not be empty.
inline double median(std::vector<double>& v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// The value that nine in ten of v are at most (v reordered).
inline double p90(std::vector<double>& v) {
  const std::size_t at = v.size() * 9 / 10;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(at), v.end());
  return v[at];
}

}  // namespace bench
