// item_clock.hpp: ItemClock — what a worker measures of the chunk it runs when a pool records
// insights (PoolOptions::insights): the time in its tasks, the slowest of them, the rest being
// decoding and encoding — and ChunkTiming, what the worker reports of it. The chunk runners
// (ResultWriter and invoke in wire.hpp, run_thread_task in thread_backend.hpp) look at
// t_item_clock once per chunk and, when it is set, run the chunk through ItemClock::run; a pool
// without insights pays that one look.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "mproc/detail/wait.hpp"

namespace mproc::detail {

class JobBase;

// A cheap clock for the stamps around tasks: the CPU's time-stamp counter where there is one (a
// few ns), else now_ns(). Converted to ns by ns_per_tick.
inline std::uint64_t item_ticks() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#else
  return static_cast<std::uint64_t>(now_ns());
#endif
}

// Both clocks read once, at the first call: the start of the span that converts ticks to ns. A
// pool that records insights takes it before it forks its workers, which inherit it, so a
// worker's first chunk is converted over a span of milliseconds, not over its own microsecond.
struct TickOrigin {
  std::int64_t ns;
  std::uint64_t ticks;
};
inline const TickOrigin& tick_origin() noexcept {
  static const TickOrigin origin{now_ns(), item_ticks()};
  return origin;
}

// Nanoseconds per tick at (now_ns, now_ticks): over the span since tick_origin() once it is a
// millisecond long, else over [start, now] of a chunk; 1 when neither span is usable.
[[nodiscard]] inline double ns_per_tick(std::int64_t start_ns, std::uint64_t start_ticks, std::int64_t now,
                                        std::uint64_t now_ticks) noexcept {
  constexpr std::int64_t kLongSpan = 1'000'000;
  const TickOrigin& o = tick_origin();
  if (now - o.ns >= kLongSpan && now_ticks > o.ticks)
    return static_cast<double>(now - o.ns) / static_cast<double>(now_ticks - o.ticks);
  if (now_ticks <= start_ticks || now <= start_ns) return 1.0;
  return static_cast<double>(now - start_ns) / static_cast<double>(now_ticks - start_ticks);
}

// How a chunk's tasks are timed. Two stamps around a task cost ~20-50 ns, as much as the
// article's rows take, so tasks are timed one by one only while they are long:
//  - one by one ("each"), in windows of kProbe tasks: a window in which kShortInWindow or more
//    tasks took under kShortTicks switches to blocks. Counting short tasks, not adding times up,
//    keeps one task stretched by a preemption or a page fault (a loaded machine) from deciding
//    for the whole chunk.
//  - in blocks of kBlock tasks, with one stamp after each block and none inside it: the block's
//    time counts as work (with any decoding in it), and none of its tasks is named among the
//    slowest (for such tasks, that says nothing anyway). Two blocks in a row whose tasks averaged
//    kShortTicks or more switch back to one by one (one block stretched by a preemption does not).
// A chunk starts one by one.
struct ItemClock {
  static constexpr std::uint32_t kSlowest = 5;
  static constexpr std::uint32_t kProbe = 8;
  static constexpr std::uint32_t kShortInWindow = 6;
  static constexpr std::uint32_t kBlock = 256;
  static constexpr std::uint64_t kShortTicks = 2000;  // ~0.5-1 us at 2-4 GHz
  struct Slow {
    std::uint32_t offset = 0;  // in the chunk
    std::uint64_t ticks = 0;
  };

  ItemClock() noexcept : ItemClock(now_ns()) {}
  // For a chunk that began at start (a now_ns() stamp the runner took anyway).
  explicit ItemClock(std::int64_t start) noexcept : start_ns(start), start_ticks(item_ticks()) {}

  std::int64_t start_ns;
  std::uint64_t start_ticks;
  std::uint64_t work_ticks = 0;
  std::uint32_t items = 0;  // run so far: the next one's offset
  std::uint32_t slow_count = 0;
  Slow slow[kSlowest]{};
  // For a runner that reports the chunk itself before its job may complete (ThreadPool): called
  // with the job and the call's kind once the items ran.
  void (*ran)(ItemClock& clock, JobBase& job, const char* kind) = nullptr;
  void* owner = nullptr;

  bool each = true;  // timing tasks one by one; else in blocks

  // The tick source run() reads by default.
  struct Ticks {
    std::uint64_t operator()() const noexcept { return item_ticks(); }
  };

  // Runs tasks [from, count), timed as above: ready(i) gets task i ready (decodes its item; not
  // timed), one(i) runs it, block(i, end) gets ready and runs tasks [i, end) as ready and one
  // would (or faster). ticks() is read around them (a test gives its own, to decide the times).
  template <class Ready, class One, class Block, class Now = Ticks>
  void run(std::size_t from, std::size_t count, Ready&& ready, One&& one, Block&& block, Now ticks = {}) {
    std::size_t i = from;
    while (i < count) {
      if (each) {
        ready(i);
        const std::uint64_t before = ticks();
        one(i);
        end_item(ticks() - before);
        ++i;
      } else {
        const std::size_t end = std::min<std::size_t>(count, i + kBlock);
        const std::uint64_t before = ticks();
        block(i, end);
        end_block(ticks() - before, static_cast<std::uint32_t>(end - i));
        i = end;
      }
    }
  }
  // Nanoseconds per tick for this chunk, which ran from start_ns, start_ticks to now.
  [[nodiscard]] double ns_per_tick(std::int64_t now, std::uint64_t now_ticks) const noexcept {
    return detail::ns_per_tick(start_ns, start_ticks, now, now_ticks);
  }

 private:
  void end_item(std::uint64_t took) noexcept {
    work_ticks += took;
    keep_if_slow(items++, took);
    short_in_window_ += took < kShortTicks ? 1 : 0;
    if (++in_window_ < kProbe) return;
    if (short_in_window_ >= kShortInWindow) {
      each = false;
      long_blocks_ = 0;
    }
    in_window_ = short_in_window_ = 0;
  }
  void end_block(std::uint64_t took, std::uint32_t count) noexcept {
    work_ticks += took;
    items += count;
    long_blocks_ = took >= count * kShortTicks ? long_blocks_ + 1 : 0;
    if (long_blocks_ >= 2) each = true;
  }
  void keep_if_slow(std::uint32_t offset, std::uint64_t took) noexcept {
    std::uint32_t at = 0;
    if (slow_count < kSlowest)
      at = slow_count++;
    else if (took > slow[kSlowest - 1].ticks)
      at = kSlowest - 1;
    else
      return;
    slow[at] = {offset, took};
    for (; at > 0 && slow[at - 1].ticks < slow[at].ticks; --at) {  // slowest first
      const Slow t = slow[at - 1];
      slow[at - 1] = slow[at];
      slow[at] = t;
    }
  }

  std::uint32_t in_window_ = 0, short_in_window_ = 0, long_blocks_ = 0;
};

// Set by a worker around a chunk it times; null otherwise.
inline thread_local ItemClock* t_item_clock = nullptr;

// What a worker measured of a chunk, sent after its result header (wire.hpp) when the pool records
// insights. Times are now_ns() stamps (steady_clock: one clock for every process on the machine).
struct ChunkTiming {
  std::int64_t start_ns = 0;  // the chunk began
  std::int64_t end_ns = 0;    // its results were written
  std::int64_t work_ns = 0;   // in its tasks: the rest of the span is decoding and encoding
  std::int64_t idle_ns = 0;   // the worker waited for it, since its previous chunk or its start
  std::int64_t ready_ns = 0;  // the worker was ready for work (its start-up done)
  std::int32_t pid = 0;       // the worker's process
  std::uint32_t slow_count = 0;
  struct Slow {
    std::uint32_t offset = 0;  // in the chunk
    std::uint32_t unused = 0;
    std::int64_t ns = 0;
  } slow[ItemClock::kSlowest]{};
};
// Fills timing's task figures from clock, once the chunk ran (end_ns already set).
void take_item_times(ChunkTiming& timing, ItemClock& clock);

}  // namespace mproc::detail
