// pool_types.hpp: the pools a typed test suite runs on (the process Pool and the ThreadPool), and
// their names in the test names (`ctest -R ThreadPool`).
#pragma once

#include <string>
#include <type_traits>

#include <gtest/gtest.h>

#include "mproc/mproc.hpp"

using PoolTypes = ::testing::Types<mproc::Pool, mproc::ThreadPool>;

class PoolNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, mproc::ThreadPool> ? "ThreadPool" : "Pool";
  }
};
