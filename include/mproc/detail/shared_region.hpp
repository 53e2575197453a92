// shared_region.hpp: map_shared_region, the memory behind every unnamed shared object (Lock,
// Queue, Value, ...): a MAP_SHARED | MAP_ANONYMOUS mapping made before fork, which children
// inherit at the same address and which goes with the last process that maps it. Nothing named.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

namespace mproc::detail {

// A zeroed shared region of at least bytes; unmapped when the last handle in this process goes.
// Recorded in the region registry (region_registry.hpp) while mapped.
std::shared_ptr<void> map_shared_region(std::size_t bytes);

// Builds a T in a new shared region. T must not need its destructor run (atomics, PODs).
template <class T, class... Args>
std::shared_ptr<T> make_shared_state(Args&&... args) {
  std::shared_ptr<void> region = map_shared_region(sizeof(T));
  T* p = ::new (region.get()) T(std::forward<Args>(args)...);
  return std::shared_ptr<T>(std::move(region), p);
}

// Timeouts: any duration, as nanoseconds; nullopt waits forever.
using OptNanos = std::optional<std::int64_t>;
template <class Rep, class Period>
std::int64_t to_nanos(std::chrono::duration<Rep, Period> d) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return ns < 0 ? 0 : static_cast<std::int64_t>(ns);
}

}  // namespace mproc::detail
