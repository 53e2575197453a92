// send_checks.hpp: the misuses that only a pool sending its tasks to other processes checks
// (see checks.hpp), kept apart because they need the codec: a ThreadPool does not compile cereal.
#pragma once

#include "mproc/codec.hpp"
#include "mproc/detail/checks.hpp"
#include "mproc/detail/invoke.hpp"

namespace mproc::detail {

template <Style S, class Item, template <class> class Check>
inline constexpr bool all_arguments_v = []<class... A>(types<A...>) {
  return (Check<std::remove_cvref_t<A>>::value && ...);
}(typename task_args<S, Item, std::type_identity_t>::type{});

template <class T>
struct not_refers_elsewhere : std::bool_constant<!stays_behind_v<T>> {};
template <class T>
struct sendable : std::bool_constant<Sendable<T>> {};

// The misuse among the values bound to Fn (bind.hpp), nested binds' included; none for others.
template <class Fn>
struct bound_misuse {
  static constexpr Misuse value = Misuse::none;
};
template <BindSide Side, class F, class... V>
struct bound_misuse<Bound<Side, F, V...>> {
  static constexpr Misuse value = (refers_elsewhere_v<V> || ...) ? Misuse::bound_value_refers_elsewhere
                                  : !(Sendable<V> && ...)        ? Misuse::bound_value_not_sendable
                                                                 : bound_misuse<F>::value;
};

template <Style S, class Fn, class Item>
constexpr Misuse first_send_misuse() {
  if constexpr (!SendableFunction<Fn>)
    return Misuse::function_not_sendable;
  else if constexpr (bound_misuse<Fn>::value != Misuse::none)
    return bound_misuse<Fn>::value;
  else if constexpr (call_misuse<S, Fn, Item>() != Misuse::none)
    return call_misuse<S, Fn, Item>();
  else if constexpr (!all_arguments_v<S, Item, not_refers_elsewhere>)
    return Misuse::argument_refers_elsewhere;
  else if constexpr (!all_arguments_v<S, Item, sendable>)
    return Misuse::argument_not_sendable;
  else if constexpr (stays_behind_v<task_result_t<S, Fn, Item>>)
    return Misuse::result_refers_elsewhere;
  else if constexpr (!Sendable<task_result_t<S, Fn, Item>>)
    return Misuse::result_not_sendable;
  else
    return Misuse::none;
}

template <Style S, class Fn, class Item>
struct send_misuse {
  static constexpr Misuse value = first_send_misuse<S, Fn, Item>();
};

}  // namespace mproc::detail
