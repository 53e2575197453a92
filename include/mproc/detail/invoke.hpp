// invoke.hpp: how a task is called, in one place for every backend — call() (map: f(item);
// starmap and apply: f(items...)), run_local() for backends that share memory with the caller,
// and invoke<S, F, Item>(), the entry point a worker process jumps to by address.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <span>
#include <tuple>
#include <type_traits>
#include <vector>

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

// A worker's entry point for one chunk: reads the function and the items (or where they are)
// from in, calls the function on each, and writes the results to out as ResultWriter does.
// Never throws: what cannot be decoded or encoded becomes that item's error.
using Invoker = void (*)(Reader& in, Writer& out);

void write_item_error(Writer& out, std::exception_ptr e);

// Writes a chunk's results in the form TypedJob::deliver reads (see ResultForm): densely while
// every item succeeds and R is sent as its bytes, switching to per-item at the first failure.
template <class R>
class ResultWriter {
 public:
  explicit ResultWriter(Writer& out) : out_(out), form_at_(out.size()) {
    auto form = dense_ ? ResultForm::dense : ResultForm::per_item;
    out_.write(&form, 1);
  }
  // Runs one task and writes its result or its exception.
  template <Style S, class F, class Item>
  void run(const F& f, const Item& item) {
    std::size_t mark = out_.size();
    try {
      auto result = call<S>(f, item);
      if constexpr (is_raw_v<R>) {
        if (dense_) {
          std::byte* at = out_.grow(sizeof(R));
          if constexpr (std::is_empty_v<R>)
            *at = std::byte{0};  // None: nothing to copy
          else
            std::memcpy(at, &result, sizeof(R));
          ++done_;
          return;
        }
      }
      std::uint8_t ok = 0;
      out_.write(&ok, 1);
      encode(out_, result);
      ++done_;
    } catch (...) {
      out_.truncate(mark);  // drop a result that failed halfway through encoding
      fail(std::current_exception());
    }
  }
  // Runs count tasks on items[0..count). When results are dense, they go straight into one block
  // sized once: this loop is all a worker adds to the function's own cost.
  template <Style S, class F, class Item>
  void run_all(const F& f, const Item* items, std::size_t count) {
    if constexpr (is_raw_v<R> && !std::is_empty_v<R>) {
      if (dense_ && done_ == 0) {
        std::byte* block = out_.grow(count * sizeof(R));
        std::size_t i = 0;  // a local: done_ would be stored and reloaded around every call
        try {
          for (; i < count; ++i) {
            auto result = call<S>(f, items[i]);
            std::memcpy(block + i * sizeof(R), &result, sizeof(R));
          }
          done_ = count;
        } catch (...) {
          done_ = i;
          out_.truncate(form_at_ + 1 + i * sizeof(R));
          fail(std::current_exception());
        }
      }
    }
    while (done_ < count) run<S>(f, items[done_]);
  }
  // The items from the next one up to count fail with e (the chunk could not be read).
  void fail_rest(std::size_t count, const std::exception_ptr& e) {
    while (done_ < count) fail(e);
  }

 private:
  void fail(const std::exception_ptr& e) {
    if (dense_) to_per_item();
    write_item_error(out_, e);
    ++done_;
  }
  // Rewrites the dense results so far in the per-item form, which can carry an exception.
  void to_per_item() {
    if constexpr (is_raw_v<R>) {
      std::vector<R> so_far(done_);
      if (done_) std::memcpy(so_far.data(), out_.data() + form_at_ + 1, done_ * sizeof(R));
      out_.truncate(form_at_);
      auto form = ResultForm::per_item;
      out_.write(&form, 1);
      std::uint8_t ok = 0;
      for (const R& r : so_far) {
        out_.write(&ok, 1);
        out_.write(&r, sizeof(R));
      }
    }
    dense_ = false;
  }

  Writer& out_;
  std::size_t form_at_;
  std::size_t done_ = 0;
  bool dense_ = is_raw_v<R>;
};

// Reads a chunk's header as write_chunk_header wrote it (the function, the item count), then
// has run_items(f, count, results) read and run the items. What cannot be read fails every item
// not yet run with that error.
template <Style S, class F, class Item, class RunItems>
void run_chunk(Reader& in, Writer& out, RunItems run_items) {
  ResultWriter<result_t<S, F, Item>> results(out);
  std::uint64_t count = 0;
  try {
    F f{};
    if constexpr (is_function_pointer_v<F>) in.read(&f, sizeof f);
    in.read(&count, sizeof count);
    run_items(f, count, results);
  } catch (...) {
    results.fail_rest(count, std::current_exception());
  }
}

template <Style S, class F, class Item>
void invoke(Reader& in, Writer& out) {
  run_chunk<S, F, Item>(in, out, [&in](const F& f, std::uint64_t count, auto& results) {
    std::optional<Item> item;
    for (std::uint64_t i = 0; i < count; ++i) {
      if constexpr (std::is_default_constructible_v<Item>) {
        if (!item) item.emplace();
        decode_into(in, *item);
      } else {
        item.emplace(decode<Item>(in));
      }
      results.template run<S>(f, *item);
    }
  });
}

// As invoke, for items the worker reads where they are, in memory it shares with the parent.
template <Style S, class F, class Item>
void invoke_in_place(Reader& in, Writer& out) {
  run_chunk<S, F, Item>(in, out, [&in](const F& f, std::uint64_t count, auto& results) {
    const Item* items = nullptr;
    in.read(&items, sizeof items);
    results.template run_all<S>(f, items, count);
  });
}

// A chunk's header: the worker's entry point, the function if it is a pointer, the item count.
template <class F>
void write_chunk_header(Writer& w, Invoker entry, const F& f, std::size_t count) {
  w.write(&entry, sizeof entry);
  if constexpr (is_function_pointer_v<F>) w.write(&f, sizeof f);
  auto n = static_cast<std::uint64_t>(count);
  w.write(&n, sizeof n);
}

// Writes a chunk's header and items as invoke<S, F, Item> reads them.
template <Style S, class F, class Item>
void encode_chunk(Writer& w, const F& f, std::span<const Item> items) {
  write_chunk_header(w, &invoke<S, F, Item>, f, items.size());
  if (items.empty()) return;
  // Size the buffer once from the first item, rather than doubling through a large chunk.
  std::size_t before = w.size();
  encode(w, items[0]);
  w.reserve(w.size() + (w.size() - before) * (items.size() - 1) + 64);
  for (const Item& item : items.subspan(1)) encode(w, item);
}

// Writes a chunk whose items the worker reads in place (invoke_in_place): where they are, not
// what they are. Only for items in memory the worker shares, unchanged until it has run them.
template <Style S, class F, class Item>
void encode_chunk_in_place(Writer& w, const F& f, std::span<const Item> items) {
  static_assert(std::is_trivially_copyable_v<Item>);
  write_chunk_header(w, &invoke_in_place<S, F, Item>, f, items.size());
  const Item* where = items.data();
  w.write(&where, sizeof where);
}

}  // namespace mproc::detail
