// A program that uses only the ThreadPool compiles no serialization code: mproc/thread_pool.hpp
// does not include the codec, and with it cereal (issue 15). Checked when this file compiles,
// before any other header could bring cereal in.
#include "mproc/thread_pool.hpp"

#ifdef CEREAL_CEREAL_HPP_
#error "mproc/thread_pool.hpp includes cereal: a ThreadPool-only program should not compile it"
#endif

#include <gtest/gtest.h>

#include <tuple>
#include <vector>

TEST(ThreadPoolAlone, AppliesAndMapsWithoutTheCodec) {
  mproc::ThreadPool pool(2);
  EXPECT_EQ(pool.apply([](int x) { return x * 2; }, std::tuple{21}), 42);
  const std::vector<int> items{1, 2, 3, 4};
  EXPECT_EQ(pool.map([](int x) { return x * x; }, items), (std::vector<int>{1, 4, 9, 16}));
}
