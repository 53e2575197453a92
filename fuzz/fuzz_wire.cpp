// fuzz_wire: libFuzzer target for the wire format's readers (mproc/detail/wire.hpp). The first
// byte picks what the rest is:
//   results  a chunk's results as a parent reads them from a worker (read_results), for one of
//            a few result types and a count of items from the second byte;
//   chunk    a chunk's items as a worker reads them: the worker runs the chunk (run_chunk), and
//            the parent reads back what it wrote;
//   frames   a task frame, a result frame's header and a hello.
// A reader given any bytes may throw mproc::SerializationError; it must never crash, leak, hang,
// read out of bounds or allocate without bound; read_results must report every item, so that
// the job completes whatever the bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>

#include "fuzz_types.hpp"
#include "mproc/detail/wire.hpp"

namespace {

namespace d = mproc::detail;
using Bytes = std::span<const std::byte>;

template <class R>
void read_as(std::size_t count, Bytes bytes) {
  d::ListJob<R> job(nullptr, count, {}, {});
  d::Reader r(bytes);
  d::read_results<R>(job, 0, count, r);
  if (!job.ready()) std::abort();  // an item was not reported: its caller would wait for ever
}

void results(std::uint8_t type, std::size_t count, Bytes bytes) {
  switch (type % 6) {
    case 0:
      return read_as<int>(count, bytes);
    case 1:
      return read_as<double>(count, bytes);
    case 2:
      return read_as<std::string>(count, bytes);
    case 3:
      return read_as<mproc::None>(count, bytes);
    case 4:
      return read_as<std::tuple<int, std::string>>(count, bytes);
    default:
      return read_as<mproc_fuzz::Records>(count, bytes);
  }
}

struct Length {
  std::size_t operator()(const std::string& s) const { return s.size(); }
};
struct Twice {
  long operator()(long x) const {
    if (x == 7) throw std::runtime_error("seven");
    return static_cast<long>(2 * static_cast<unsigned long>(x));  // wraps: x is any 8 bytes
  }
};
struct Sum {
  double operator()(double a, int b) const { return a + b; }
};
struct Names {
  std::string operator()(const mproc_fuzz::Record& r) const { return r.name; }
};

// The worker's side of a chunk of count items whose bytes are fuzzed, then the parent's.
template <d::Style S, class F, class Item>
void run_as(std::size_t count, Bytes items) {
  d::Writer chunk;
  d::write_chunk_header(chunk, &d::invoke<S, F, Item>, F{}, count);
  chunk.write(items.data(), items.size());
  d::Reader in(chunk.bytes());
  d::Writer out;
  d::run_chunk(in, out);
  read_as<d::result_t<S, F, Item>>(count, out.bytes());
}

void chunk(std::uint8_t type, std::size_t count, Bytes bytes) {
  switch (type % 4) {
    case 0:
      return run_as<d::Style::single, Length, std::string>(count, bytes);
    case 1:
      return run_as<d::Style::single, Twice, long>(count, bytes);
    case 2:
      return run_as<d::Style::star, Sum, std::tuple<double, int>>(count, bytes);
    default:
      return run_as<d::Style::single, Names, mproc_fuzz::Record>(count, bytes);
  }
}

void frames(Bytes bytes) {
  try {
    d::Writer task;
    task.write(bytes.data(), bytes.size());
    (void)d::task_chunk(task.bytes());
    d::restore_task_code({task.data(), task.size()}, [](std::uint32_t module, std::uint64_t offset) {
      return static_cast<std::uintptr_t>(module) + offset;
    });
  } catch (const mproc::SerializationError&) {
  }
  try {
    d::Reader r(bytes);
    (void)d::read_result_header(r);
  } catch (const mproc::SerializationError&) {
  }
  d::Reader r(bytes);
  (void)d::read_hello(r);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  Bytes bytes(reinterpret_cast<const std::byte*>(data) + 3, size - 3);
  const std::size_t count = data[2] % 17;
  try {
    switch (static_cast<mproc_fuzz::WireMode>(data[0] % 3)) {
      case mproc_fuzz::WireMode::results:
        results(data[1], count, bytes);
        break;
      case mproc_fuzz::WireMode::chunk:
        chunk(data[1], count, bytes);
        break;
      case mproc_fuzz::WireMode::frames:
        frames(bytes);
        break;
    }
  } catch (const mproc::SerializationError&) {
    // The expected refusal of a malformed frame.
  }
  return 0;
}
