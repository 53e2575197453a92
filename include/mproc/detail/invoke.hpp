// invoke.hpp: how a task is called, in one place for every backend — call() (map: f(item);
// starmap and apply: f(items...)), run_local() for backends that share memory with the caller,
// and invoke<S, F, Item>(), the entry point a worker process jumps to by address.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <span>
#include <tuple>
#include <type_traits>

#include "mproc/codec.hpp"
#include "mproc/detail/job.hpp"

namespace mproc::detail {

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

// Runs a chunk in this process, reporting each item to the job.
template <Style S, class F, class Item, class R>
void run_local(const F& f, std::span<const Item> items, std::size_t first, TypedJob<R>& job) noexcept {
  for (std::size_t i = 0; i < items.size(); ++i) {
    try {
      job.set_value(first + i, call<S>(f, items[i]));
    } catch (...) {
      job.set_error(first + i, std::current_exception());
    }
  }
  job.done(items.size());
}

// --- functions that cross into a worker process ------------------------------------------------

template <class F>
inline constexpr bool is_function_pointer_v = std::is_pointer_v<F>&& std::is_function_v<std::remove_pointer_t<F>>;

// A worker forked from this program can rebuild F from nothing (an empty, default-constructible
// type: a captureless lambda, std::plus<>) or from its address (a function pointer).
template <class F>
concept SendableFunction = is_function_pointer_v<F> ||
    (std::is_empty_v<F>&& std::is_default_constructible_v<F>&& std::is_trivially_copyable_v<F>);

// A worker's entry point for one chunk: reads the function and the items from in, calls the
// function on each, and writes to out a status byte (0 value, 1 exception) and the payload
// per item. Never throws: what cannot be decoded or encoded becomes that item's error.
using Invoker = void (*)(Reader& in, Writer& out);

void write_item_error(Writer& out, std::exception_ptr e);

template <Style S, class F, class Item>
void invoke(Reader& in, Writer& out) {
  std::uint64_t count = 0;
  std::size_t done = 0;
  try {
    F f = [&] {
      if constexpr (is_function_pointer_v<F>) {
        F p = nullptr;
        in.read(&p, sizeof p);
        return p;
      } else {
        return F{};
      }
    }();
    in.read(&count, sizeof count);
    std::optional<Item> item;
    for (; done < count; ++done) {
      if constexpr (std::is_default_constructible_v<Item>) {
        if (!item) item.emplace();
        decode_into(in, *item);
      } else {
        item.emplace(decode<Item>(in));
      }
      std::size_t mark = out.size();
      try {
        auto result = call<S>(f, *item);
        std::uint8_t ok = 0;
        out.write(&ok, 1);
        encode(out, result);
      } catch (...) {
        out.truncate(mark);  // drop a result that failed halfway through encoding
        write_item_error(out, std::current_exception());
      }
    }
  } catch (...) {
    // The chunk itself could not be decoded: every item not yet run fails with that error.
    auto e = std::current_exception();
    for (; done < count; ++done) write_item_error(out, e);
  }
}

// Writes a chunk's header and items as invoke<S, F, Item> reads them.
template <Style S, class F, class Item>
void encode_chunk(Writer& w, const F& f, std::span<const Item> items) {
  Invoker entry = &invoke<S, F, Item>;
  w.write(&entry, sizeof entry);
  if constexpr (is_function_pointer_v<F>) w.write(&f, sizeof f);
  auto count = static_cast<std::uint64_t>(items.size());
  w.write(&count, sizeof count);
  if (items.empty()) return;
  // Size the buffer once from the first item, rather than doubling through a large chunk.
  std::size_t before = w.size();
  encode(w, items[0]);
  w.reserve(w.size() + (w.size() - before) * (items.size() - 1) + 64);
  for (const Item& item : items.subspan(1)) encode(w, item);
}

}  // namespace mproc::detail
