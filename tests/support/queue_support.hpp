// queue_support.hpp: helpers of the queue tests: recognisable big payloads, the shared memory
// resident in this process and its open file descriptors.
#pragma once

#include <dirent.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

namespace mproc::test {

// n bytes that depend on their position and on seed, so a shifted or mixed-up copy shows.
inline std::uint64_t pattern_word(std::size_t i, std::size_t seed) { return (i + 1) * 0x9E3779B97F4A7C15ull + seed; }

inline std::string pattern(std::size_t n, std::size_t seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint64_t w = pattern_word(i / 8, seed);
    std::memcpy(s.data() + i, &w, std::min<std::size_t>(8, n - i));
  }
  return s;
}

inline bool is_pattern(const std::string& s, std::size_t n, std::size_t seed) {
  if (s.size() != n) return false;
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint64_t w = pattern_word(i / 8, seed);
    if (std::memcmp(s.data() + i, &w, std::min<std::size_t>(8, n - i)) != 0) return false;
  }
  return true;
}

// RssShmem of /proc/self/status: shared memory pages this process has resident, in KiB.
inline long shmem_resident_kib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  long value = 0;
  while (status >> key) {
    if (key == "RssShmem:") {
      status >> value;
      return value;
    }
    status.ignore(1 << 12, '\n');
  }
  return -1;
}

inline std::size_t open_fds() {
  std::size_t n = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (::readdir(dir)) ++n;
    ::closedir(dir);
  }
  return n;
}

}  // namespace mproc::test
