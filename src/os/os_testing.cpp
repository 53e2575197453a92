#include "os/os_testing.hpp"

#include <cerrno>

namespace mproc::detail::os {
namespace {

using testing::Call;

// What is armed for one call. Atomics throughout: the calls come from any thread, and from
// children forked while another thread arms (the tracker's raw fork), where no lock may be taken.
struct Armed {
  std::atomic<int> err{0};
  std::atomic<unsigned> after{0};  // calls still to let through
  std::atomic<unsigned> times{0};  // failures still to make
  std::atomic<unsigned> failed{0};
};

Armed g_armed[static_cast<unsigned>(Call::count)];

Armed& armed(Call call) noexcept { return g_armed[static_cast<unsigned>(call)]; }
std::uint32_t bit(Call call) noexcept { return std::uint32_t{1} << static_cast<unsigned>(call); }

// Takes one from n unless it is 0; returns whether it did.
bool take_one(std::atomic<unsigned>& n) noexcept {
  unsigned v = n.load();
  while (v > 0)
    if (n.compare_exchange_weak(v, v - 1)) return true;
  return false;
}

}  // namespace

std::atomic<std::uint32_t> g_armed_calls{0};

bool take_injected_failure(Call call) noexcept {
  Armed& a = armed(call);
  if (take_one(a.after) || !take_one(a.times)) return false;
  a.failed.fetch_add(1);
  errno = a.err.load();
  return true;
}

namespace testing {

void fail(Call call, int err, unsigned after, unsigned times) noexcept {
  clear(call);
  Armed& a = armed(call);
  a.err.store(err);
  a.after.store(after);
  a.times.store(times);
  a.failed.store(0);
  g_armed_calls.fetch_or(bit(call));
}

void clear(Call call) noexcept {
  g_armed_calls.fetch_and(~bit(call));
  armed(call).times.store(0);
}

void clear_all() noexcept {
  for (unsigned c = 0; c < static_cast<unsigned>(Call::count); ++c) clear(static_cast<Call>(c));
}

unsigned failed(Call call) noexcept { return armed(call).failed.load(); }

}  // namespace testing
}  // namespace mproc::detail::os
