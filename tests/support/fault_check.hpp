// fault_check.hpp: the check every fault test makes — a task that kills its worker fails with
// WorkerLost within a second, and the pool then runs a map of 1000 tasks correctly on its full
// number of workers.
#pragma once

#include <algorithm>
#include <chrono>
#include <numeric>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.hpp"

namespace mproc::test {

inline int square(int x) { return x * x; }

// How the worker is expected to end: by signal (exit_code ignored) or by exit code.
struct Death {
  int signal = 0;
  int exit_code = 0;
};

template <class Pool>
void expect_full_pool_works(Pool& pool, unsigned workers) {
  std::vector<int> in(1000);
  std::iota(in.begin(), in.end(), 0);
  auto out = pool.map(square, in, 1);
  ASSERT_EQ(out.size(), in.size());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(out[static_cast<std::size_t>(i)], i * i);
  auto pids = pool.backend().worker_pids();
  EXPECT_EQ(pids.size(), workers);
  EXPECT_EQ(std::count(pids.begin(), pids.end(), 0), 0) << "a worker was not replaced";
}

template <class F>
void expect_worker_lost_then_recovers(F killer, Death death, PoolOptions options = {.processes = 2}) {
  mproc::Pool pool(options);
  auto start = std::chrono::steady_clock::now();
  auto r = pool.apply_async(killer, std::tuple{0});
  try {
    (void)r.get(std::chrono::seconds(5));
    ADD_FAILURE() << "expected WorkerLost";
  } catch (const mproc::WorkerLost& e) {
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
    EXPECT_GT(e.pid(), 0);
    EXPECT_EQ(e.signal(), death.signal) << e.what();
    if (death.signal == 0) {
      EXPECT_EQ(e.exit_code(), death.exit_code) << e.what();
    }
  }
  expect_full_pool_works(pool, pool.processes());
}

}  // namespace mproc::test
