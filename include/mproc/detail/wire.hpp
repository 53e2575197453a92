// wire.hpp: the bytes that pass between a pool and its workers, each written and read here, the
// writer beside its reader. Backends move frames; only this header and src/wire.cpp know what
// lies at which byte.
//
//   task frame    a TaskHeader, then a chunk
//   chunk         its entry point (an Invoker's address), the function if it is a pointer, the
//                 item count (u64), where its results go when the worker writes them itself
//                 (placed: an address in the shared heap), then the items encoded, or their
//                 address (read in place)
//   result frame  a ResultHeader (the chunk's seq, how long it ran), a ChunkTiming when the pool
//                 records insights (both sides know it from PoolOptions::insights), then the
//                 chunk's results
//   results       a ResultForm byte, then
//                   dense:    every result's bytes back to back (all succeeded, R is sent as its
//                             bytes: the parent copies them in one go)
//                   per_item: for each item a status byte (0 value, 1 exception) and its encoded
//                             value or exception
//                   failed:   one encoded exception, every item's (the chunk could not run)
//                   placed:   nothing: the worker wrote every result where the chunk said
//                 (per_item's status 2, likewise: that item's result was written there)
//   hello         a status byte (0: the worker's initializer ran, 1: it threw) and the exception
//   spill note    a task or result frame of heap_spill_bytes() or more, written into a block of
//                 the shared heap, crosses as a SpillNote: a tag no seq can be, the frame's seq,
//                 and where the frame lies. The receiver reads the frame there; the sender of a
//                 task keeps its block until the task's result is in, the receiver of a result
//                 frees its block once read.
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
#include "mproc/detail/item_clock.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/shared_heap.hpp"

namespace mproc::detail {

// --- results ----------------------------------------------------------------------------------

enum class ResultForm : std::uint8_t { per_item = 0, dense = 1, failed = 2, placed = 3 };
// A per-item status byte: the value follows, an exception follows, or it was written in place.
inline constexpr std::uint8_t kItemValue = 0, kItemError = 1, kItemPlaced = 2;

// One item's exception, in the per-item form.
void write_item_error(Writer& out, const std::exception_ptr& e);
// Called first by write_item_error with each exception a task let escape, where a backend set
// it (a process pool's worker under a memory limit, which ends on a std::bad_alloc); null else.
extern void (*task_error_hook)(const std::exception_ptr& e) noexcept;
// A chunk's results when it could not run at all: every item fails with e.
void fail_chunk(Writer& out, const std::exception_ptr& e);

// Writes a chunk's results: densely while every item succeeds and R is sent as its bytes,
// switching to per-item at the first failure; or, told place_into(dest), each value straight
// into dest[i] (the caller's memory in the shared heap), the frame saying only which were.
template <class R>
class ResultWriter {
 public:
  explicit ResultWriter(Writer& out) : out_(out), form_at_(out.size()) {
    auto form = dense_ ? ResultForm::dense : ResultForm::per_item;
    out_.write(&form, 1);
  }
  // From the first item on, values go to dest[i]; before any item ran.
  void place_into(R* dest) noexcept {
    if constexpr (placeable_v<R>) {
      dest_ = dest;
      auto form = ResultForm::placed;
      std::memcpy(out_.data() + form_at_, &form, 1);
    }
  }
  // Runs one task and writes its result or its exception.
  template <Style S, class F, class Item>
  void run(const F& f, const Item& item) {
    run_with<S, F, Item>([&] { return call<S>(f, item); });
  }
  // As run, for an item decoded for this call alone: f may take it over (call_owned).
  template <Style S, class F, class Item>
  void run_owned(const F& f, Item& item) {
    run_with<S, F, Item>([&] { return call_owned<S>(f, item); });
  }
  // Runs count tasks on items[0..count). When results are dense, they go straight into one block
  // sized once: this loop is all a worker adds to the function's own cost. Timed on clock when
  // it is set (insights; see ItemClock).
  template <Style S, class F, class Item>
  void run_all(const F& f, const Item* items, std::size_t count, ItemClock* clock) {
    if (clock) [[unlikely]] {
      if constexpr (is_raw_v<R> && !std::is_empty_v<R>)
        if (dense_) out_.reserve(out_.size() + (count - done_) * sizeof(R));
      auto one = [&](std::size_t i) { run<S>(f, items[i]); };
      auto block = [&](std::size_t, std::size_t end) { run_range<S>(f, items, end); };
      clock->run(
          done_, count, [](std::size_t) {}, one, block);
      return;
    }
    run_range<S>(f, items, count);
  }
  // The items from the next one up to count fail with e (the chunk could not be read).
  void fail_rest(std::size_t count, const std::exception_ptr& e) {
    while (done_ < count) fail(e);
  }

 private:
  // Runs tasks [done_, end) on items: as one block while results are dense and R is sent as its
  // bytes, one by one otherwise (and after a failure, which ends the dense form).
  template <Style S, class F, class Item>
  void run_range(const F& f, const Item* items, std::size_t end) {
    if constexpr (is_raw_v<R> && !std::is_empty_v<R>)
      if (dense_) run_block<S>(f, items, end);
    while (done_ < end) run<S>(f, items[done_]);
  }
  // Runs one task, call_it(), and writes its result or its exception.
  template <Style S, class F, class Item, class Call>
  void run_with(Call&& call_it) {
    std::size_t mark = out_.size();
    try {
      auto result = call_it();
      if constexpr (placeable_v<R>) {
        if (dest_) {
          std::memcpy(dest_ + done_, &result, sizeof(R));
          if (!dense_) out_.write(&kItemPlaced, 1);
          ++done_;
          return;
        }
      }
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
      out_.write(&kItemValue, 1);
      encode(out_, result);
      keep_spare(result);  // its buffer, warm, for the next argument decoded (a big echo)
      ++done_;
    } catch (...) {
      out_.truncate(mark);  // drop a result that failed halfway through encoding
      fail(std::current_exception());
    }
  }
  // Runs items [done_, count) into one block after the dense results so far.
  template <Style S, class F, class Item>
  void run_block(const F& f, const Item* items, std::size_t count) {
    const std::size_t from = done_;
    std::byte* block =
        dest_ ? reinterpret_cast<std::byte*>(dest_) : out_.grow((count - from) * sizeof(R)) - from * sizeof(R);
    std::size_t i = from;  // a local: done_ would be stored and reloaded around every call
    try {
      for (; i < count; ++i) {
        auto result = call<S>(f, items[i]);
        std::memcpy(block + i * sizeof(R), &result, sizeof(R));
      }
      done_ = count;
    } catch (...) {
      done_ = i;
      if (!dest_) out_.truncate(form_at_ + 1 + i * sizeof(R));
      fail(std::current_exception());
    }
  }
  void fail(const std::exception_ptr& e) {
    if (dense_) to_per_item();
    write_item_error(out_, e);
    ++done_;
  }
  // Rewrites the dense (or placed) results so far in the per-item form, which can carry an
  // exception.
  void to_per_item() {
    if (dest_) {
      out_.truncate(form_at_);
      auto form = ResultForm::per_item;
      out_.write(&form, 1);
      for (std::size_t i = 0; i < done_; ++i) out_.write(&kItemPlaced, 1);
    } else if constexpr (is_raw_v<R>) {
      std::vector<R> so_far(done_);
      if (done_) std::memcpy(so_far.data(), out_.data() + form_at_ + 1, done_ * sizeof(R));
      out_.truncate(form_at_);
      auto form = ResultForm::per_item;
      out_.write(&form, 1);
      for (const R& r : so_far) {
        out_.write(&kItemValue, 1);
        out_.write(&r, sizeof(R));
      }
    }
    dense_ = false;
  }

  Writer& out_;
  std::size_t form_at_;
  std::size_t done_ = 0;
  bool dense_ = is_raw_v<R>;
  R* dest_ = nullptr;  // placed: where item i's value goes (dest_[i])
};

// A result said to be written in place must be for a job that asked for that.
template <class R>
void check_placed(TypedJob<R>& job, std::size_t first) {
  if (!job.destination(first)) throw SerializationError("mproc: corrupt result: placed, but not asked to be");
}

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
      } else if (form == ResultForm::placed) {
        check_placed(job, first);
        i = count;
      } else if (form != ResultForm::per_item) {
        throw SerializationError("mproc: corrupt result: bad form byte");
      }
      for (; i < count; ++i) {
        std::uint8_t status = 0;
        r.read(&status, 1);
        if (status == kItemValue)
          job.set_value(first + i, decode<R>(r));
        else if (status == kItemError)
          job.set_error(first + i, decode_exception(r));
        else if (status == kItemPlaced)
          check_placed(job, first);
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

// A chunk's function as it crosses: a function pointer as its address, right after the entry
// point (where rename_task_code finds it), an empty type as nothing; a Bound (bind.hpp) as its
// function's, with its values encoded after the item count, so that values that cannot be
// decoded fail the chunk's items (invoke_chunk knows how many by then).
template <class F>
struct FunctionWire {
  static constexpr bool has_pointer = is_function_pointer_v<F>;
  using Pointer = std::conditional_t<has_pointer, F, std::nullptr_t>;
  static void write_pointer(Writer& w, const F& f) {
    if constexpr (has_pointer) w.write(&f, sizeof f);
  }
  static void write_values(Writer&, const F&) {}
  static Pointer read_pointer(Reader& in) {
    Pointer p{};
    if constexpr (has_pointer) in.read(&p, sizeof p);
    return p;
  }
  static F build(Pointer p, Reader&) {
    if constexpr (has_pointer)
      return p;
    else
      return F{};
  }
};
template <BindSide Side, class G, class... V>
struct FunctionWire<Bound<Side, G, V...>> {
  using F = Bound<Side, G, V...>;
  using Inner = FunctionWire<G>;
  static constexpr bool has_pointer = Inner::has_pointer;
  using Pointer = typename Inner::Pointer;
  static void write_pointer(Writer& w, const F& f) { Inner::write_pointer(w, f.function()); }
  static void write_values(Writer& w, const F& f) {
    Inner::write_values(w, f.function());
    std::apply([&w](const V&... values) { (encode(w, values), ...); }, f.values());
  }
  static Pointer read_pointer(Reader& in) { return Inner::read_pointer(in); }
  static F build(Pointer p, Reader& in) {
    G g = Inner::build(p, in);
    return F(std::move(g), std::tuple<V...>{decode<V>(in)...});  // braces: decoded in order
  }
};

// Reads a chunk's header past the entry point (the function, the item count, where results go
// when Placed), then has run_items(f, count, results) read and run the items. What cannot be read
// fails every item not yet run with that error.
template <Style S, class F, class Item, bool Placed, class RunItems>
void invoke_chunk(Reader& in, Writer& out, RunItems run_items) {
  using R = result_t<S, F, Item>;
  ResultWriter<R> results(out);
  std::uint64_t count = 0;
  try {
    const auto pointer = FunctionWire<F>::read_pointer(in);
    in.read(&count, sizeof count);
    if constexpr (Placed) {
      R* dest = nullptr;
      in.read(&dest, sizeof dest);
      // Only the heap is written: a destination anywhere else is refused, not followed.
      if (count > SIZE_MAX / sizeof(R) || !in_shared_heap(dest, static_cast<std::size_t>(count) * sizeof(R)))
        throw SerializationError("mproc: a chunk's results are to go outside the shared heap");
      results.place_into(dest);
    }
    const F f = FunctionWire<F>::build(pointer, in);
    run_items(f, count, results);
  } catch (...) {
    results.fail_rest(count, std::current_exception());
  }
}

template <Style S, class F, class Item, bool Placed = false>
void invoke(Reader& in, Writer& out) {
  invoke_chunk<S, F, Item, Placed>(in, out, [&in](const F& f, std::uint64_t count, auto& results) {
    std::optional<Item> item;
    auto decode_next = [&] {
      if constexpr (std::is_default_constructible_v<Item>) {
        if (!item) item.emplace();
        decode_into(in, *item);
      } else {
        item.emplace(decode<Item>(in));
      }
    };
    auto run_next = [&] {
      decode_next();
      results.template run_owned<S>(f, *item);
    };
    // One look at the clock per chunk: the untimed loop is the same with insights or without.
    if (ItemClock* clock = t_item_clock) [[unlikely]] {
      clock->run(
          0, count, [&](std::size_t) { decode_next(); }, [&](std::size_t) { results.template run_owned<S>(f, *item); },
          [&](std::size_t from, std::size_t end) {
            for (std::size_t i = from; i < end; ++i) run_next();
          });
    } else {
      for (std::uint64_t i = 0; i < count; ++i) run_next();
    }
    if (item) keep_spares(*item);  // what the function did not take, for the next chunk
  });
}

// As invoke, for items the worker reads where they are, in memory it shares with the parent.
template <Style S, class F, class Item, bool Placed = false>
void invoke_in_place(Reader& in, Writer& out) {
  invoke_chunk<S, F, Item, Placed>(in, out, [&in](const F& f, std::uint64_t count, auto& results) {
    const Item* items = nullptr;
    in.read(&items, sizeof items);
    results.template run_all<S>(f, items, count, t_item_clock);
  });
}

// A chunk's header: the worker's entry point, the function if it is a pointer, the item count,
// where results go when the worker writes them itself (dest, placed; else nothing), then values
// bound to the function (FunctionWire).
template <class F, class R = std::byte>
void write_chunk_header(Writer& w, Invoker entry, const F& f, std::size_t count, R* dest = nullptr) {
  w.write(&entry, sizeof entry);
  FunctionWire<F>::write_pointer(w, f);
  auto n = static_cast<std::uint64_t>(count);
  w.write(&n, sizeof n);
  if (dest) w.write(&dest, sizeof dest);
  FunctionWire<F>::write_values(w, f);
}

// The worker's entry point for a chunk: items InPlace or encoded, results placed at dest or sent.
template <Style S, class F, class Item, bool InPlace, bool Placed = false>
Invoker entry_point(const result_t<S, F, Item>* dest) {
  if constexpr (!Placed && placeable_v<result_t<S, F, Item>>) {
    if (dest) return entry_point<S, F, Item, InPlace, true>(dest);
  }
  if constexpr (InPlace)
    return &invoke_in_place<S, F, Item, Placed>;
  else
    return &invoke<S, F, Item, Placed>;
}

// Writes a chunk's header and items as invoke<S, F, Item> reads them; dest: see
// encode_task.
template <Style S, class F, class Item>
void encode_chunk(Writer& w, const F& f, std::span<const Item> items, result_t<S, F, Item>* dest = nullptr) {
  write_chunk_header(w, entry_point<S, F, Item, false>(dest), f, items.size(), dest);
  if (items.empty()) return;
  // Size the buffer once from the first item, rather than doubling through a large chunk. Not
  // for a chunk of one (apply): growing by a slack there moved its whole item again, 64 MB for
  // a 64 MB argument, into a fresh block.
  std::size_t before = w.size();
  encode(w, items[0]);
  if (items.size() > 1) w.reserve(w.size() + (w.size() - before) * (items.size() - 1) + 64);
  for (const Item& item : items.subspan(1)) encode(w, item);
}

// Writes a chunk whose items the worker reads in place (invoke_in_place): where they are, not
// what they are. Only for items in memory the worker shares, unchanged until it has run them.
template <Style S, class F, class Item>
void encode_chunk_in_place(Writer& w, const F& f, std::span<const Item> items, result_t<S, F, Item>* dest = nullptr) {
  static_assert(heap_readable<Item>::value);
  write_chunk_header(w, entry_point<S, F, Item, true>(dest), f, items.size(), dest);
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
  // Chunks a worker may run one after another without the parent told of each result: the
  // same nonzero value for the chunks of one call (its job's address, set when sent), 0 when
  // every result is wanted as it comes (a stream, a progress meter). Process pools only.
  std::uint64_t batch = 0;
};

// A task frame's header, before its chunk (seq 0: set_task_seq numbers it when it is sent).
template <class F>
void write_task_header(Writer& w) {
  TaskHeader h;
  h.function_module = FunctionWire<F>::has_pointer ? 0 : kNoFunction;
  w.write(&h, sizeof h);
}

// Writes a task frame: a header, then the chunk. dest (placed): the worker writes item i's
// result to dest[i] itself, in the shared heap; null: it sends them.
template <Style S, class F, class Item>
void encode_task(Writer& w, const F& f, std::span<const Item> items, result_t<S, F, Item>* dest = nullptr) {
  write_task_header<F>(w);
  encode_chunk<S>(w, f, items, dest);
}

// As encode_task, for items the worker reads in place (encode_chunk_in_place).
template <Style S, class F, class Item>
void encode_task_in_place(Writer& w, const F& f, std::span<const Item> items, result_t<S, F, Item>* dest = nullptr) {
  write_task_header<F>(w);
  encode_chunk_in_place<S>(w, f, items, dest);
}

// Throw SerializationError when task is too short for what they read.
[[nodiscard]] TaskHeader read_task_header(std::span<const std::byte> task);
void set_task_seq(Writer& task, std::uint64_t seq);
void set_task_batch(Writer& task, std::uint64_t batch);
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

// ChunkTiming (item_clock.hpp) follows the ResultHeader when the pool records insights.

// Empties out and leaves room for the header, which end_result_frame writes once the chunk ran,
// and, timed: for a ChunkTiming after it (write_chunk_timing).
void begin_result_frame(Writer& out, bool timed = false);
void end_result_frame(Writer& out, const ResultHeader& header);
void write_chunk_timing(Writer& out, const ChunkTiming& timing);
// Throws SerializationError when r is too short.
[[nodiscard]] ResultHeader read_result_header(Reader& r);
[[nodiscard]] ChunkTiming read_chunk_timing(Reader& r);

// A worker's first word: whether its initializer ran (error null) or threw error.
void write_hello(Writer& out, const std::exception_ptr& error);
// The initializer's exception, or null when it ran.
[[nodiscard]] std::exception_ptr read_hello(Reader& r);

// --- frames through the heap (spill notes) ---------------------------------------------------

// Bit 63 set: no chunk's seq is ever as large (SlotShared::claim keeps that bit for itself).
inline constexpr std::uint64_t kSpillTag = 0xfffffffffffff17eu;

struct SpillNote {
  std::uint64_t tag = kSpillTag;
  std::uint64_t seq = 0;  // the frame's, read from its header: the receiver claims a task before
                          // reading its block, which the parent may reuse once another ran it
  const std::byte* at = nullptr;
  std::uint64_t size = 0;

  [[nodiscard]] std::span<const std::byte> frame() const noexcept { return {at, static_cast<std::size_t>(size)}; }
};

// What to send through a ring for frame (a task or a result frame, both headed by their seq):
// the frame itself, or, when it lies in the heap (Writer::in_heap), note made out for it.
[[nodiscard]] std::span<const std::byte> ring_message(const Writer& frame, SpillNote& note);
// The note that message is, or nullopt when it is a frame itself. Throws SerializationError for
// a note that names bytes outside the heap: those are never followed.
[[nodiscard]] std::optional<SpillNote> read_spill_note(std::span<const std::byte> message);

}  // namespace mproc::detail
