// 1000 pools built and destroyed, each with one map: what a pool takes (file descriptors,
// threads, child processes, /dev/shm entries) it gives back. Readings are taken between pools,
// against a baseline taken after the first 10 (one-time set-up is not growth).
#include <unistd.h>

#include <numeric>
#include <sstream>
#include <thread>

#include <mproc/mproc.hpp>

#include "stress.hpp"

namespace stress {
namespace {

int square(int x) { return x * x; }

struct Reading {
  int fds = 0;
  int threads = 0;
  int children = 0;
  int shm_new = 0;  // /dev/shm entries that were not there at the start

  bool operator==(const Reading&) const = default;
};

Reading take_reading(const std::set<std::string>& shm_before) {
  Reading r{static_cast<int>(open_fds().size()), static_cast<int>(thread_count()),
            static_cast<int>(children_of().size()), 0};
  for (const auto& name : shm_entries()) r.shm_new += shm_before.count(name) ? 0 : 1;
  return r;
}

void one_pool(const std::vector<int>& in) {
  mproc::Pool pool(2);
  auto out = pool.map(square, in);
  for (std::size_t i = 0; i < in.size(); ++i)
    if (out[i] != in[i] * in[i]) throw Failure("map item " + std::to_string(i) + " is wrong");
}

void report_readings(const char* prefix, const Reading& r) {
  figure(std::string(prefix) + "fds", r.fds);
  figure(std::string(prefix) + "threads", r.threads);
  figure(std::string(prefix) + "children", r.children);
  figure(std::string(prefix) + "shm", r.shm_new);
}

void pools_run(long count) {
  auto shm_before = shm_entries();
  std::vector<int> in(100);
  std::iota(in.begin(), in.end(), 0);
  phase("the first 10 pools");
  for (int i = 0; i < 10; ++i) one_pool(in);
  Reading base = take_reading(shm_before), worst = base;
  report_readings("base_", base);
  auto start = std::chrono::steady_clock::now();
  for (long i = 10; i < count; ++i) {
    phase("pool " + std::to_string(i));
    one_pool(in);
    if (i % 100 == 99) {
      Reading r = take_reading(shm_before);
      worst = {std::max(worst.fds, r.fds), std::max(worst.threads, r.threads), std::max(worst.children, r.children),
               std::max(worst.shm_new, r.shm_new)};
    }
  }
  figure("ms_per_pool", seconds_since(start) * 1000 / static_cast<double>(count - 10));
  report_readings("max_", worst);
  // Workers are reaped by join; a moment's grace for what the kernel has not finished tearing down.
  Reading end = take_reading(shm_before);
  for (int i = 0; i < 100 && !(end == base); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    end = take_reading(shm_before);
  }
  report_readings("end_", end);
  if (!(end == base)) throw Failure("resources grew (base -> end as listed)");
}

}  // namespace

bool pools(const Args& args) {
  long count = args.count ? args.count : 1000;
  if (count <= 10) throw std::invalid_argument("pools: --count must be over 10");
  return run_scenario(
      args, [&] { pools_run(count); }, 120,
      [&](const Outcome& out) {
        auto trio = [&](const char* what) {
          std::ostringstream s;
          s << what << " " << out.value(std::string("base_") + what) << " -> " << out.value(std::string("end_") + what)
            << " (max " << out.value(std::string("max_") + what) << ")";
          return s.str();
        };
        std::ostringstream fig;
        fig.precision(3);
        fig << count << " pools, Pool(2) + one map of 100 each, " << out.value("ms_per_pool")
            << " ms per pool; from pool 10 to the end: " << trio("fds") << ", " << trio("threads") << ", "
            << trio("children") << ", new /dev/shm entries " << out.value("end_shm");
        return fig.str();
      });
}

}  // namespace stress
