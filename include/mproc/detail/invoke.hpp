// invoke.hpp: how a task is called, in one place for every backend: call() (map: f(item);
// starmap and apply: f(items...)), the type it gives back (result_t), and which functions can
// be sent to a worker process (SendableFunction). How a chunk of calls crosses to a worker and
// its results back is wire.hpp's.
#pragma once

#include <cstdint>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

namespace mproc {

// What a task whose function returns void gives back: Python's None.
using None = std::monostate;

namespace detail {

// map calls f(item); starmap and apply unpack the item: f(std::get<0>(item), ...).
enum class Style : std::uint8_t { single, star };

template <Style S, class F, class Item>
struct raw_result;
template <class F, class Item>
struct raw_result<Style::single, F, Item> {
  using type = std::invoke_result_t<const F&, const Item&>;
};
template <class F, class Item>
struct raw_result<Style::star, F, Item> {
  using type = decltype(std::apply(std::declval<const F&>(), std::declval<const Item&>()));
};

// What a task gives back: the function's result, decayed; None for a void function.
template <Style S, class F, class Item>
using result_t = std::conditional_t<std::is_void_v<typename raw_result<S, F, Item>::type>, None,
                                    std::decay_t<typename raw_result<S, F, Item>::type>>;

template <Style S, class F, class Item>
result_t<S, F, Item> call(const F& f, const Item& item) {
  auto run = [&]() -> decltype(auto) {
    if constexpr (S == Style::single)
      return std::invoke(f, item);
    else
      return std::apply(f, item);
  };
  if constexpr (std::is_void_v<typename raw_result<S, F, Item>::type>) {
    run();
    return None{};
  } else {
    return run();
  }
}

template <class F>
inline constexpr bool is_function_pointer_v = std::is_pointer_v<F>&& std::is_function_v<std::remove_pointer_t<F>>;

// A worker forked from this program can rebuild F from nothing (an empty, default-constructible
// type: a captureless lambda, std::plus<>) or from its address (a function pointer).
template <class F>
concept SendableFunction = is_function_pointer_v<F> ||
    (std::is_empty_v<F>&& std::is_default_constructible_v<F>&& std::is_trivially_copyable_v<F>);

}  // namespace detail
}  // namespace mproc
