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

#include "mproc/bind.hpp"

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

// Whether f can take item as an rvalue, giving the same result type as call: then a worker hands
// an item it decoded for this one call over to f (a 64 MB vector taken by value is moved, not
// copied).
template <Style S, class F, class Item>
constexpr bool takes_owned() {
  using Want = std::decay_t<typename raw_result<S, F, Item>::type>;
  if constexpr (S == Style::single) {
    if constexpr (std::is_invocable_v<const F&, Item&&>)
      return std::is_same_v<std::decay_t<std::invoke_result_t<const F&, Item&&>>, Want>;
    else
      return false;
  } else {
    if constexpr (requires { std::apply(std::declval<const F&>(), std::declval<Item&&>()); })
      return std::is_same_v<std::decay_t<decltype(std::apply(std::declval<const F&>(), std::declval<Item&&>()))>, Want>;
    else
      return false;
  }
}

// As call, with an item the caller no longer needs: moved into f where f takes it so.
template <Style S, class F, class Item>
result_t<S, F, Item> call_owned(const F& f, Item& item) {
  if constexpr (!takes_owned<S, F, Item>() || std::is_void_v<typename raw_result<S, F, Item>::type>) {
    return call<S>(f, item);
  } else if constexpr (S == Style::single) {
    return std::invoke(f, std::move(item));
  } else {
    return std::apply(f, std::move(item));
  }
}

template <class F>
inline constexpr bool is_function_pointer_v = std::is_pointer_v<F>&& std::is_function_v<std::remove_pointer_t<F>>;

// A worker forked from this program can rebuild F from nothing (an empty, default-constructible
// type: a captureless lambda, std::plus<>), from its address (a function pointer), or, for a
// Bound (bind.hpp), from its function so rebuilt and its values, which travel encoded (whether
// they can is send_checks.hpp's question: this header knows no codec).
template <class F>
struct sendable_function
    : std::bool_constant<is_function_pointer_v<F> || (std::is_empty_v<F> && std::is_default_constructible_v<F> &&
                                                      std::is_trivially_copyable_v<F>)> {};
template <BindSide Side, class F, class... V>
struct sendable_function<Bound<Side, F, V...>> : sendable_function<F> {};
template <class F>
concept SendableFunction = sendable_function<F>::value;

}  // namespace detail
}  // namespace mproc
