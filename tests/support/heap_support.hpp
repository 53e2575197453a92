// heap_support.hpp: waiting for the shared heap to hold what it held before a test.
#pragma once

#include <chrono>
#include <cstddef>
#include <thread>

#include "mproc/shared_heap.hpp"

namespace mproc::test {

// Waits up to 5 s for the heap's bytes in use to be back at before: a worker may drop its
// reference, and the collector free a result block, just after the caller saw the result.
inline bool heap_back_to(std::size_t before) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (mproc::heap_stats().in_use != before) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace mproc::test
