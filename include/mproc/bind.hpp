/// @file
/// bind.hpp: bind_front, bind_back and Bound — Python's functools.partial for tasks: a function
/// with some of its arguments given now, the rest by each task. On a process pool the bound
/// values are encoded with the tasks, so they reach the workers, as a capturing lambda's cannot.
///
///     pool.map(mproc::bind_back(total_range, 4, 8), rows);   // total_range(row, 4, 8) for each row
///     pool.map(mproc::bind_front(scale, 2.5), xs);           // scale(2.5, x) for each x
#pragma once

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace mproc {

/// Where bind_front and bind_back put the bound values: before the task's arguments or after.
enum class BindSide { front, back };

/// A function and values bound to it, called as f(values..., args...) (BindSide::front) or
/// f(args..., values...) (BindSide::back), the values passed as const lvalues. Made by
/// bind_front and bind_back. A Pool sends it to its workers when the function could be sent on
/// its own (a function, a captureless lambda) and every value is Sendable (codec.hpp); any pool
/// that calls tasks in this process (ThreadPool) takes any. Immutable: safe to share between
/// threads.
template <BindSide Side, class F, class... V>
class Bound {
 public:
  /// f and the values bound to it; bind_front and bind_back make them.
  Bound(F f, std::tuple<V...> values) : f_(std::move(f)), values_(std::move(values)) {}

  /// f(values..., args...) or f(args..., values...), as Side says.
  template <class... A>
  requires(Side == BindSide::front ? std::is_invocable_v<const F&, const V&..., A...>
                                   : std::is_invocable_v<const F&, A..., const V&...>) decltype(auto)
  operator()(A&&... args) const {
    return std::apply(
        [&](const V&... values) -> decltype(auto) {
          if constexpr (Side == BindSide::front)
            return std::invoke(f_, values..., std::forward<A>(args)...);
          else
            return std::invoke(f_, std::forward<A>(args)..., values...);
        },
        values_);
  }

  /// The function.
  [[nodiscard]] const F& function() const noexcept { return f_; }
  /// The values bound to it.
  [[nodiscard]] const std::tuple<V...>& values() const noexcept { return values_; }

 private:
  F f_;
  std::tuple<V...> values_;
};

/// f with values bound before the arguments each task passes (C++20's std::bind_front; Python's
/// functools.partial(f, *values)). The values are copied (or moved) into the result.
template <class F, class... V>
Bound<BindSide::front, std::decay_t<F>, std::decay_t<V>...> bind_front(F&& f, V&&... values) {
  return {std::forward<F>(f), std::tuple<std::decay_t<V>...>(std::forward<V>(values)...)};
}

/// f with values bound after the arguments each task passes (C++23's std::bind_back).
template <class F, class... V>
Bound<BindSide::back, std::decay_t<F>, std::decay_t<V>...> bind_back(F&& f, V&&... values) {
  return {std::forward<F>(f), std::tuple<std::decay_t<V>...>(std::forward<V>(values)...)};
}

namespace detail {
template <class F>
struct is_bound : std::false_type {};
template <BindSide Side, class F, class... V>
struct is_bound<Bound<Side, F, V...>> : std::true_type {};
}  // namespace detail

}  // namespace mproc
