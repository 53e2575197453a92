// checks.hpp: what a pool's public calls check of a task's function, arguments and result
// before anything else is instantiated, so that a misuse gets one mproc message, as the first
// error, and little after it: the machinery that would fail on it (the codec, cereal, the
// worker's entry point) is never instantiated (see BasicPool's accepts()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

#include "mproc/detail/invoke.hpp"

namespace mproc::detail {

// Which public call: apply passes a tuple's elements, map one item, starmap an item's elements.
enum class Call : std::uint8_t { apply, map, starmap };

// Items that starmap and apply unpack: tuples, pairs, arrays.
template <class T>
concept TupleLike = requires {
  std::tuple_size<T>::value;
};

template <class... A>
struct types {};

// The arguments a task's function receives from an item, each passed as Pass makes it. An item
// apply or starmap cannot unpack counts as one argument, so that the result type of such a
// misuse is still known and the caller's code raises no errors of its own.
template <Style S, class Item, template <class> class Pass>
struct task_args {
  using type = types<Pass<Item>>;
};
template <class Item, template <class> class Pass>
requires TupleLike<Item>
struct task_args<Style::star, Item, Pass> {
  using type = decltype([]<std::size_t... I>(std::index_sequence<I...>) {
    return types<Pass<std::tuple_element_t<I, Item>>...>{};
  }(std::make_index_sequence<std::tuple_size_v<Item>>{}));
};

template <class T>
using as_const_lvalue = const T&;  // how a task passes its arguments
template <class T>
using as_lvalue = T&;
template <class T>
using as_rvalue = T&&;

template <class F, class Args>
struct call_with : std::false_type {};
template <class F, class... A>
requires std::is_invocable_v<const F&, A...>
struct call_with<F, types<A...>> : std::true_type {
  using result = std::invoke_result_t<const F&, A...>;
};

template <Style S, class F, class Item, template <class> class Pass>
using call_as = call_with<F, typename task_args<S, Item, Pass>::type>;

// A task's function called on an item as a task calls it: on const lvalues.
template <Style S, class F, class Item>
inline constexpr bool callable_v = call_as<S, F, Item, as_const_lvalue>::value;
// Callable only on lvalues or rvalues it may change: a parameter taken by T& or T&&.
template <Style S, class F, class Item>
inline constexpr bool takes_reference_v =
    !callable_v<S, F, Item> && (call_as<S, F, Item, as_lvalue>::value || call_as<S, F, Item, as_rvalue>::value);

// The result a function declares, where it has one signature (a function, a lambda that is not
// generic): the result type of a call that cannot be made, so that the caller's code raises no
// errors of its own after the message naming the misuse.
template <class F>
struct declared_result {};
template <class R, class... A>
struct declared_result<R (*)(A...)> {
  using type = R;
};
template <class R, class... A>
struct declared_result<R (*)(A...) noexcept> {
  using type = R;
};
template <class R, class C, class... A>
struct declared_result<R (C::*)(A...)> {
  using type = R;
};
template <class R, class C, class... A>
struct declared_result<R (C::*)(A...) const> {
  using type = R;
};
template <class R, class C, class... A>
struct declared_result<R (C::*)(A...) noexcept> {
  using type = R;
};
template <class R, class C, class... A>
struct declared_result<R (C::*)(A...) const noexcept> {
  using type = R;
};
template <class F>
requires requires { &F::operator(); }
struct declared_result<F> : declared_result<decltype(&F::operator())> {};

// The result of a call that cannot be made, and whose function declares none: it appears only
// after the message naming the misuse, and converts to anything for the same reason.
struct Unusable {
  template <class T>
  operator T() const;  // never defined: a misuse does not compile
};

// What a task gives back (result_t, invoke.hpp), and a stand-in where the call is a misuse.
template <Style S, class F, class Item>
consteval auto task_result_of() {
  if constexpr (call_as<S, F, Item, as_const_lvalue>::value)
    return std::type_identity<typename call_as<S, F, Item, as_const_lvalue>::result>{};
  else if constexpr (call_as<S, F, Item, as_lvalue>::value)
    return std::type_identity<typename call_as<S, F, Item, as_lvalue>::result>{};
  else if constexpr (call_as<S, F, Item, as_rvalue>::value)
    return std::type_identity<typename call_as<S, F, Item, as_rvalue>::result>{};
  else if constexpr (requires { typename declared_result<F>::type; })
    return std::type_identity<typename declared_result<F>::type>{};
  else
    return std::type_identity<Unusable>{};
}
template <Style S, class F, class Item>
using task_result_t = std::conditional_t<std::is_void_v<typename decltype(task_result_of<S, F, Item>())::type>, None,
                                         std::decay_t<typename decltype(task_result_of<S, F, Item>())::type>>;

enum class Misuse : std::uint8_t {
  none,
  arguments_not_tuple,
  items_not_tuples,
  function_not_sendable,
  bound_value_refers_elsewhere,
  bound_value_not_sendable,
  takes_reference,
  not_callable,
  argument_refers_elsewhere,
  argument_not_sendable,
  result_refers_elsewhere,
  result_not_sendable,
};

// The misuses of calling Fn on an item, for every pool.
template <Style S, class Fn, class Item>
constexpr Misuse call_misuse() {
  if constexpr (takes_reference_v<S, Fn, Item>)
    return Misuse::takes_reference;
  else if constexpr (!callable_v<S, Fn, Item>)
    return Misuse::not_callable;
  else
    return Misuse::none;
}

// The first misuse in a call to a pool that sends functions, arguments and results to other
// processes: value, call_misuse()'s among them. Defined with the codec, in send_checks.hpp, which
// such a pool's backend includes, so that a pool that sends nothing does not compile cereal.
template <Style S, class Fn, class Item>
struct send_misuse;

// The first misuse in a call of Fn on Item; Sends: the pool sends functions, arguments and
// results to other processes.
template <bool Sends, Call C, class Fn, class Item>
constexpr Misuse misuse() {
  constexpr Style S = C == Call::map ? Style::single : Style::star;
  if constexpr (C == Call::apply && !TupleLike<Item>)
    return Misuse::arguments_not_tuple;
  else if constexpr (C == Call::starmap && !TupleLike<Item>)
    return Misuse::items_not_tuples;
  else if constexpr (Sends)
    return send_misuse<S, Fn, Item>::value;
  else
    return call_misuse<S, Fn, Item>();
}

// True for no misuse; else fails the one static_assert that names it.
template <Misuse M>
constexpr bool accept() {
  static_assert(M != Misuse::arguments_not_tuple,
                "mproc: pass the arguments as a tuple: apply(f, std::tuple{5}), or apply(f) for none.");
  static_assert(M != Misuse::items_not_tuples,
                "mproc: starmap unpacks each item into the function's arguments: make the items tuples, "
                "pairs or arrays, or use map, which passes each item whole.");
  static_assert(M != Misuse::function_not_sendable,
                "mproc::Pool: this function cannot be sent to a worker process that is already running: a "
                "capturing lambda or a function object with state exists only in this process. Bind the "
                "values it needs to a function with mproc::bind_front(f, values...) or "
                "mproc::bind_back(f, values...), which send them with the tasks; or pass them as arguments "
                "(apply, starmap); or use mproc::ThreadPool or mproc::Process, which accept any callable.");
  static_assert(M != Misuse::bound_value_refers_elsewhere,
                "mproc::Pool: a value bound with mproc::bind_front or mproc::bind_back is a pointer, "
                "reference, span or string_view (a string literal is a pointer): its target does not "
                "travel to the worker process. Bind the value itself (std::vector, std::string), or use "
                "mproc::ThreadPool, which shares this process's memory.");
  static_assert(M != Misuse::bound_value_not_sendable,
                "mproc::Pool: a value bound with mproc::bind_front or mproc::bind_back cannot be sent to a "
                "worker process. Make its type trivially copyable, or give it a cereal serialize(Archive&) "
                "member (and a default constructor), or use mproc::ThreadPool.");
  static_assert(M != Misuse::takes_reference,
                "mproc: the function takes a parameter by non-const reference (T& or T&&): a task works on "
                "its own copy of each argument, so results cannot come back through a reference. Take it "
                "by value or by const&, and return what the task computes.");
  static_assert(M != Misuse::not_callable,
                "mproc: the function cannot be called with these arguments: apply passes the tuple's "
                "elements, map each item, starmap each item's elements.");
  static_assert(M != Misuse::argument_refers_elsewhere,
                "mproc::Pool: an argument is a pointer, reference, span or string_view: its target does "
                "not travel to the worker process. Send the value itself (std::vector, std::string), or "
                "use mproc::ThreadPool, which shares this process's memory.");
  static_assert(M != Misuse::argument_not_sendable,
                "mproc::Pool: an argument's type cannot be sent to a worker process. Make it trivially "
                "copyable, or give it a cereal serialize(Archive&) member (and a default constructor), or "
                "use mproc::ThreadPool, which passes values without serializing them.");
  static_assert(M != Misuse::result_refers_elsewhere,
                "mproc::Pool: the function's result is a pointer, reference, span or string_view: its "
                "target would not travel back from the worker process. Return the value itself "
                "(std::vector, std::string), or use mproc::ThreadPool.");
  static_assert(M != Misuse::result_not_sendable,
                "mproc::Pool: the function's result type cannot be sent back from a worker process. Make "
                "it trivially copyable, or give it a cereal serialize(Archive&) member (and a default "
                "constructor), or use mproc::ThreadPool, which passes values without serializing them.");
  return M == Misuse::none;
}

}  // namespace mproc::detail
