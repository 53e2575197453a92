// expect: Backend is not a pool backend
// expect note: b.terminate()
// A backend that offers everything BasicPool needs but terminate(): BasicPool's check says so,
// naming the member, before anything else fails.
#include <cstddef>
#include <memory>
#include <span>

#include "mproc/basic_pool.hpp"

struct NoTerminate {
  static constexpr bool sends_functions = false;
  static constexpr bool copies_arguments = false;
  explicit NoTerminate(mproc::PoolOptions) {}
  [[nodiscard]] unsigned size() const noexcept { return 1; }
  [[nodiscard]] mproc::detail::JobHost* host() noexcept { return nullptr; }
  void check_running() const {}
  template <mproc::detail::Style S, class Job, class Fn, class Item>
  void submit(const std::shared_ptr<Job>&, const Fn&, std::span<const Item>, std::size_t,
              const std::shared_ptr<const void>&) {}
  void close() {}
  void join() {}
  void shutdown() noexcept {}
};

int main() { mproc::BasicPool<NoTerminate> pool(1); }
