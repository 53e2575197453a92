// os_testing.hpp: failure injection at the os seam, for tests (as fmt's test seam over its
// system calls). A test arms a call to fail with an errno; the wrapper then fails exactly as the
// real call would, through the same retry-and-throw path: std::system_error with that errno and
// the call's name. Every wrapper that makes a resource (a process, a descriptor, a mapping)
// checks it; the waits and reads on hot paths (futex, poll, read, write) do not.
//
// Unarmed, the check is one relaxed load of a word that is never written and a predictable
// branch, next to a system call of 50 ns or more.
#pragma once

#include <atomic>
#include <cstdint>

namespace mproc::detail::os {

namespace testing {

// The calls that can be made to fail. fork also covers the tracker's raw fork; mmap covers both
// map_shared_anonymous and map_fd, and the guard process's memory; pidfd_open also covers the
// guard's pidfd of the program; close_range, close_fds_from's first way (its fallbacks are
// tested); populate, populate_pages (advice: a failure leaves the pages to fault in on first
// touch); clone, the guard process's two steps.
enum class Call : unsigned {
  fork,
  pidfd_open,
  mmap,
  memfd_create,
  pipe,
  shm_open,
  ftruncate,
  socketpair,
  close_range,
  populate,
  clone,
  count
};

// Lets `after` calls succeed, then makes the next `times` calls fail with err. Any thread's
// calls count. Replaces what was armed for that call before.
void fail(Call call, int err, unsigned after = 0, unsigned times = 1) noexcept;
void clear(Call call) noexcept;
void clear_all() noexcept;
// How many calls were made to fail since the call was last armed.
unsigned failed(Call call) noexcept;

// Arms a call for its scope.
class ScopedFailure {
 public:
  ScopedFailure(Call call, int err, unsigned after = 0, unsigned times = 1) noexcept : call_(call) {
    fail(call, err, after, times);
  }
  ~ScopedFailure() { clear(call_); }
  ScopedFailure(const ScopedFailure&) = delete;
  ScopedFailure& operator=(const ScopedFailure&) = delete;

  [[nodiscard]] unsigned failed() const noexcept { return testing::failed(call_); }

 private:
  Call call_;
};

}  // namespace testing

// For the wrappers: the bit of each armed call.
extern std::atomic<std::uint32_t> g_armed_calls;
// Slow path: whether this call is one to fail; if so, sets errno. Async-signal-safe.
bool take_injected_failure(testing::Call call) noexcept;

// True when this call must fail, with errno set as the real call would set it.
inline bool injected_failure(testing::Call call) noexcept {
  const auto bit = std::uint32_t{1} << static_cast<unsigned>(call);
  return __builtin_expect((g_armed_calls.load(std::memory_order_relaxed) & bit) != 0, 0) && take_injected_failure(call);
}

}  // namespace mproc::detail::os
