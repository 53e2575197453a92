// mpi_overhead: MpiPool's cost per task on the article's workload (rows of 6 ints in [0, 11),
// each task counting the values within [4, 8]), at chunksize 1000 and chunksize 1. Run under
// mpirun (rank 0 measures, the other ranks work); bench/mpi_vs_mpi4py runs it next to
// mpi4py.futures. Prints JSON: {"impl": "mproc", "workers": n, "results": [...]}.
//   mpirun -n 3 build/bench/mpi_overhead [rows] [rows at chunksize 1]
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "mproc/mpi_pool.hpp"

namespace {

using Row = std::array<int, 6>;

int count_row(const Row& row) {
  int n = 0;
  for (int v : row) n += v >= 4 && v <= 8;
  return n;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  mproc::mpi::serve();  // worker ranks serve from here until rank 0 exits
  const std::size_t rows = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 300000;
  const std::size_t rows_c1 = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 30000;
  std::mt19937 gen(42);
  std::uniform_int_distribution<int> dist(0, 10);
  std::vector<Row> data(rows);
  for (auto& row : data)
    for (int& v : row) v = dist(gen);

  auto t0 = std::chrono::steady_clock::now();
  std::vector<int> serial;
  serial.reserve(rows);
  for (const auto& row : data) serial.push_back(count_row(row));
  const double serial_s = seconds_since(t0);

  mproc::MpiPool pool;
  (void)pool.map(count_row, std::vector<Row>(data.begin(), data.begin() + 2000), 100);  // warm up
  std::string results;
  bool ok = true;
  for (std::size_t chunksize : {std::size_t{1000}, std::size_t{1}}) {
    const std::size_t n = chunksize == 1 ? std::min(rows, rows_c1) : rows;
    std::vector<Row> part(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
    double best = 1e9;
    for (int rep = 0; rep < 5; ++rep) {
      t0 = std::chrono::steady_clock::now();
      auto got = pool.map(count_row, part, chunksize);
      best = std::min(best, seconds_since(t0));
      ok = ok && std::equal(got.begin(), got.end(), serial.begin());
    }
    char line[256];
    std::snprintf(line, sizeof line, "%s{\"chunksize\": %zu, \"tasks\": %zu, \"seconds\": %.6f, \"us_per_task\": %.4f}",
                  results.empty() ? "" : ", ", chunksize, n, best, best / static_cast<double>(n) * 1e6);
    results += line;
  }
  std::printf(
      "{\"impl\": \"mproc\", \"workers\": %u, \"rows\": %zu, \"serial_seconds\": %.6f, \"ok\": %s, \"results\": "
      "[%s]}\n",
      pool.processes(), rows, serial_s, ok ? "true" : "false", results.c_str());
  return ok ? 0 : 1;
}
