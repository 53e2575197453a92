// wire.hpp: the bytes that pass between a pool and its workers, each written and read here, the
// writer beside its reader. Backends move frames; only this header and src/wire.cpp know what
// lies at which byte.
//
//   task frame    a TaskHeader, then a chunk
//   chunk         its entry point (an Invoker's address), the function if it is a pointer, the
//                 item count (u64), then the items encoded, or their address (read in place)
//   result frame  a ResultHeader (the chunk's seq, how long it ran), then the chunk's results
//   results       a ResultForm byte, then
//                   dense:    every result's bytes back to back (all succeeded, R is sent as its
//                             bytes: the parent copies them in one go)
//                   per_item: for each item a status byte (0 value, 1 exception) and its encoded
//                             value or exception
//                   failed:   one encoded exception, every item's (the chunk could not run)
//   hello         a status byte (0: the worker's initializer ran, 1: it threw) and the exception
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "mproc/codec.hpp"
#include "mproc/detail/buffer.hpp"
#include "mproc/detail/invoke.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/shared_heap.hpp"

namespace mproc::detail {

// --- results ----------------------------------------------------------------------------------

enum class ResultForm : std::uint8_t { per_item = 0, dense = 1, failed = 2 };

// One item's exception, in the per-item form.
void write_item_error(Writer& out, const std::exception_ptr& e);
// A chunk's results when it could not run at all: every item fails with e.
void fail_chunk(Writer& out, const std::exception_ptr& e);

// Writes a chunk's results: densely while every item succeeds and R is sent as its bytes,
// switching to per-item at the first failure.
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

// Reads the results of items [first, first + count) of job, as ResultWriter or fail_chunk wrote
// them. What cannot be decoded fails its item and those after it in the chunk.
template <class R>
void read_results(TypedJob<R>& job, std::size_t first, std::size_t count, Reader& r) {
  if constexpr (!Sendable<R>) {
    // Only backends that send results as bytes read them, and they accept only Sendable results.
    job.fail(first, count, std::make_exception_ptr(SerializationError("mproc: this result type cannot be decoded")));
  } else {
    std::size_t i = 0;
    try {
      ResultForm form{};
      r.read(&form, 1);
      if (form == ResultForm::dense) {
        if constexpr (!is_raw_v<R>) throw SerializationError("mproc: corrupt result: dense form for this type");
        job.set_values(first, count, r.take(count * sizeof(R)));  // take() checks the length
        i = count;
      } else if (form == ResultForm::failed) {
        auto e = decode_exception(r);
        for (; i < count; ++i) job.set_error(first + i, e);
      } else if (form != ResultForm::per_item) {
        throw SerializationError("mproc: corrupt result: bad form byte");
      }
      for (; i < count; ++i) {
        std::uint8_t status = 0;
        r.read(&status, 1);
        if (status == 0)
          job.set_value(first + i, decode<R>(r));
        else if (status == 1)
          job.set_error(first + i, decode_exception(r));
        else
          throw SerializationError("mproc: corrupt result: bad status byte");
      }
    } catch (...) {
      auto e = std::current_exception();
      for (; i < count; ++i) job.set_error(first + i, e);
    }
    job.done(count);
  }
}

// read_results for a job whose result type its backend knew when it sent the chunk, and kept.
using ResultReader = void (*)(JobBase& job, std::size_t first, std::size_t count, Reader& r);
template <class R>
void read_results_of(JobBase& job, std::size_t first, std::size_t count, Reader& r) {
  read_results(static_cast<TypedJob<R>&>(job), first, count, r);
}

// --- chunks -----------------------------------------------------------------------------------

// A worker's entry point for one chunk: reads the function and the items (or where they are)
// from in, calls the function on each, and writes the results to out as ResultWriter does.
// Never throws: what cannot be decoded or encoded becomes that item's error.
using Invoker = void (*)(Reader& in, Writer& out);

// Runs the chunk in holds: reads its entry point and jumps there. Throws SerializationError
// when in is too short to hold one; what comes after, the entry point reads.
void run_chunk(Reader& in, Writer& out);

// Reads a chunk's header past the entry point (the function, the item count), then has
// run_items(f, count, results) read and run the items. What cannot be read fails every item
// not yet run with that error.
template <Style S, class F, class Item, class RunItems>
void invoke_chunk(Reader& in, Writer& out, RunItems run_items) {
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
  invoke_chunk<S, F, Item>(in, out, [&in](const F& f, std::uint64_t count, auto& results) {
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
  invoke_chunk<S, F, Item>(in, out, [&in](const F& f, std::uint64_t count, auto& results) {
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
  static_assert(heap_readable<Item>::value);
  write_chunk_header(w, &invoke_in_place<S, F, Item>, f, items.size());
  const Item* where = items.data();
  w.write(&where, sizeof where);
}

// --- task frames ------------------------------------------------------------------------------

inline constexpr std::uint32_t kNoFunction = 0xffffffffu;

struct TaskHeader {
  std::uint64_t seq = 0;  // numbers the chunk; its result frame carries it back
  // Where the chunk's code lies when addresses travel as module offsets (rename_task_code):
  // the entry point's module and the function's. kNoFunction: the chunk carries no function.
  std::uint32_t entry_module = 0;
  std::uint32_t function_module = 0;
};

// A task frame's header, before its chunk (seq 0: set_task_seq numbers it when it is sent).
template <class F>
void write_task_header(Writer& w) {
  TaskHeader h;
  h.function_module = is_function_pointer_v<F> ? 0 : kNoFunction;
  w.write(&h, sizeof h);
}

// Writes a task frame: a header, then the chunk.
template <Style S, class F, class Item>
void encode_task(Writer& w, const F& f, std::span<const Item> items) {
  write_task_header<F>(w);
  encode_chunk<S>(w, f, items);
}

// As encode_task, for items the worker reads in place (encode_chunk_in_place).
template <Style S, class F, class Item>
void encode_task_in_place(Writer& w, const F& f, std::span<const Item> items) {
  write_task_header<F>(w);
  encode_chunk_in_place<S>(w, f, items);
}

// Throw SerializationError when task is too short for what they read.
[[nodiscard]] TaskHeader read_task_header(std::span<const std::byte> task);
void set_task_seq(Writer& task, std::uint64_t seq);
// The chunk in a task frame, for run_chunk.
[[nodiscard]] std::span<const std::byte> task_chunk(std::span<const std::byte> task);

namespace wire {
// Where the entry point and the function (null when none) of the chunk in task lie.
struct CodeFields {
  std::byte* entry;
  std::byte* function;
};
CodeFields code_fields(std::span<std::byte> task);
}  // namespace wire

// For workers that do not share this process's addresses (MPI ranks): the chunk's entry point
// and function become offsets in their modules, as locate(address) names them ({module,
// offset}), and the modules go into the header.
template <class Locate>
void rename_task_code(Writer& task, Locate&& locate) {
  wire::CodeFields at = wire::code_fields({task.data(), task.size()});
  auto rename = [&locate](std::byte* field) {
    std::uintptr_t address = 0;
    std::memcpy(&address, field, sizeof address);
    auto where = locate(reinterpret_cast<const void*>(address));
    std::uint64_t offset = where.offset;
    std::memcpy(field, &offset, sizeof offset);
    return static_cast<std::uint32_t>(where.module);
  };
  TaskHeader h = read_task_header(task.bytes());
  h.entry_module = rename(at.entry);
  if (at.function) h.function_module = rename(at.function);
  std::memcpy(task.data(), &h, sizeof h);
}

// The other way, on the worker: address(module, offset) gives back each address. Throws what
// address throws (a module this worker has not loaded).
template <class Address>
void restore_task_code(std::span<std::byte> task, Address&& address) {
  wire::CodeFields at = wire::code_fields(task);
  TaskHeader h = read_task_header(task);
  auto restore = [&address](std::byte* field, std::uint32_t module) {
    std::uint64_t offset = 0;
    std::memcpy(&offset, field, sizeof offset);
    std::uintptr_t addr = address(module, offset);
    std::memcpy(field, &addr, sizeof addr);
  };
  restore(at.entry, h.entry_module);
  if (at.function) restore(at.function, h.function_module);
}

// --- result frames and hellos -----------------------------------------------------------------

struct ResultHeader {
  std::uint64_t seq = 0;     // the chunk's, from its task header
  std::int64_t took_ns = 0;  // how long the worker ran it
};

// Empties out and leaves room for the header, which end_result_frame writes once the chunk ran.
void begin_result_frame(Writer& out);
void end_result_frame(Writer& out, const ResultHeader& header);
// Throws SerializationError when r is too short.
[[nodiscard]] ResultHeader read_result_header(Reader& r);

// A worker's first word: whether its initializer ran (error null) or threw error.
void write_hello(Writer& out, const std::exception_ptr& error);
// The initializer's exception, or null when it ran.
[[nodiscard]] std::exception_ptr read_hello(Reader& r);

}  // namespace mproc::detail
