// make_corpus: writes the seed inputs kept in fuzz/corpus/ — valid frames, so the fuzzers start
// from the shapes real senders produce. Run from the repository root: build/fuzz/make_corpus fuzz/corpus
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>

#include "fuzz_types.hpp"
#include "mproc/codec.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/errors.hpp"

namespace {

namespace fs = std::filesystem;
using mproc::detail::Writer;
using mproc_fuzz::Kind;

void save(const fs::path& dir, const std::string& name, std::uint8_t first, const Writer& w) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary);
  out.put(static_cast<char>(first));
  out.write(reinterpret_cast<const char*>(w.bytes().data()), static_cast<std::streamsize>(w.bytes().size()));
}

template <class T>
void codec_seed(const fs::path& dir, const std::string& name, Kind kind, const T& value) {
  Writer w;
  mproc::detail::encode(w, value);
  save(dir, name, static_cast<std::uint8_t>(kind), w);
}

void exception_seed(const fs::path& dir, const std::string& name, const std::exception_ptr& e) {
  Writer w;
  mproc::detail::encode_exception(w, e);
  save(dir, name, static_cast<std::uint8_t>(Kind::exception), w);
}

// A ring stream: each message as the sender frames it (u64 length, then the bytes).
void channel_seed(const fs::path& dir, const std::string& name, std::uint8_t capacity_log, std::size_t count,
                  std::size_t length) {
  Writer w;
  for (std::size_t i = 0; i < count; ++i) {
    auto n = static_cast<std::uint64_t>(length + i);
    w.write(&n, sizeof n);
    for (std::uint64_t j = 0; j < n; ++j) {
      auto byte = static_cast<std::uint8_t>(j * 7 + i);
      w.write(&byte, 1);
    }
  }
  save(dir, name, capacity_log, w);
}

// fuzz_wire: [mode][type][count], then the bytes (see fuzz_wire.cpp for the types).
void wire_seed(const fs::path& dir, const std::string& name, mproc_fuzz::WireMode mode, std::uint8_t type,
               std::uint8_t count, const Writer& w) {
  Writer all;
  all.write(&type, 1);
  all.write(&count, 1);
  all.write(w.bytes().data(), w.bytes().size());
  save(dir, name, static_cast<std::uint8_t>(mode), all);
}

// Results as a worker writes them: f run on items by a ResultWriter.
template <class R, class F, class Item>
Writer results_of(const F& f, std::initializer_list<Item> items) {
  Writer w;
  mproc::detail::ResultWriter<R> out(w);
  for (const Item& item : items) out.template run<mproc::detail::Style::single>(f, item);
  return w;
}

template <class... Items>
Writer encoded(const Items&... items) {
  Writer w;
  (mproc::detail::encode(w, items), ...);
  return w;
}

void wire_seeds(const fs::path& dir) {
  using mproc_fuzz::WireMode;
  auto twice = [](int x) {
    if (x == 7) throw std::out_of_range("seven");
    return 2 * x;
  };
  auto words = [](int x) {
    if (x == 7) throw std::out_of_range("seven");
    return std::string(static_cast<std::size_t>(x), 'w');
  };
  wire_seed(dir, "results_dense_int", WireMode::results, 0, 3, results_of<int>(twice, {1, 2, 3}));
  wire_seed(dir, "results_per_item_int", WireMode::results, 0, 3, results_of<int>(twice, {1, 7, 3}));
  wire_seed(dir, "results_strings", WireMode::results, 2, 3, results_of<std::string>(words, {0, 1, 5}));
  wire_seed(dir, "results_string_error", WireMode::results, 2, 2, results_of<std::string>(words, {7, 1}));
  Writer failed;
  mproc::detail::fail_chunk(failed, std::make_exception_ptr(std::runtime_error("rank 2 has not loaded it")));
  wire_seed(dir, "results_failed_chunk", WireMode::results, 1, 4, failed);

  wire_seed(dir, "chunk_strings", WireMode::chunk, 0, 3, encoded(std::string("a"), std::string(), std::string("xyz")));
  wire_seed(dir, "chunk_longs", WireMode::chunk, 1, 4, encoded(1L, 7L, -3L, 5L));
  wire_seed(dir, "chunk_pairs", WireMode::chunk, 2, 2, encoded(std::tuple{1.5, 2}, std::tuple{-0.5, 7}));
  wire_seed(dir, "chunk_records", WireMode::chunk, 3, 2,
            encoded(mproc_fuzz::Record{"first", {1.5}, 3}, mproc_fuzz::Record{"second", {}, std::nullopt}));

  Writer task;
  mproc::detail::encode_task<mproc::detail::Style::single>(
      task, +[](int x) { return x; }, std::span<const int>());
  wire_seed(dir, "frame_task", WireMode::frames, 0, 0, task);
  Writer frame;
  mproc::detail::begin_result_frame(frame);
  mproc::detail::end_result_frame(frame, {42, 1000});
  wire_seed(dir, "frame_result_header", WireMode::frames, 0, 0, frame);
  Writer hello;
  mproc::detail::write_hello(hello, std::make_exception_ptr(std::invalid_argument("bad initializer")));
  wire_seed(dir, "frame_hello_error", WireMode::frames, 0, 0, hello);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
    return 2;
  }
  fs::path codec = fs::path(argv[1]) / "fuzz_codec";
  codec_seed(codec, "vector_of_strings", Kind::vector_of_strings, mproc_fuzz::VectorOfStrings{"", "a", "mproc"});
  codec_seed(codec, "map", Kind::map, mproc_fuzz::Map{{"one", 1}, {"minus", -1}, {"big", INT64_MAX}});
  codec_seed(codec, "tuple", Kind::tuple, mproc_fuzz::Tuple{42, "answer", 2.5, true});
  codec_seed(codec, "variant_int", Kind::variant, mproc_fuzz::Variant{7});
  codec_seed(codec, "variant_string", Kind::variant, mproc_fuzz::Variant{std::string("text")});
  codec_seed(codec, "variant_vector", Kind::variant, mproc_fuzz::Variant{std::vector<double>{1.0, -0.5}});
  codec_seed(codec, "nested", Kind::nested, mproc_fuzz::Nested{{"primes", {2, 3, 5, 7}}, {"none", {}}});
  codec_seed(codec, "records", Kind::records,
             mproc_fuzz::Records{{"first", {1.5, 2.5}, 3}, {"second", {}, std::nullopt}});
  exception_seed(codec, "exception_runtime_error", std::make_exception_ptr(std::runtime_error("boom")));
  exception_seed(codec, "exception_system_error",
                 std::make_exception_ptr(
                     std::system_error(std::make_error_code(std::errc::no_such_file_or_directory), "open /missing")));
  exception_seed(codec, "exception_worker_lost", std::make_exception_ptr(mproc::WorkerLost(1234, 9, 0)));
  exception_seed(codec, "exception_remote", std::make_exception_ptr(mproc::RemoteError("my::Error", "custom")));
  exception_seed(codec, "exception_unregistered", std::make_exception_ptr(42));

  fs::path channel = fs::path(argv[1]) / "fuzz_channel";
  channel_seed(channel, "one_small", 0, 1, 5);
  channel_seed(channel, "several_small", 2, 4, 3);
  channel_seed(channel, "empty_messages", 1, 3, 0);
  channel_seed(channel, "streams_through_small_ring", 0, 2, 150);
  channel_seed(channel, "large_ring", 7, 3, 1000);

  wire_seeds(fs::path(argv[1]) / "fuzz_wire");
  return 0;
}
