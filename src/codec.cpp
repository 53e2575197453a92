// The non-template half of the codec: buffers, errors, and exceptions crossing processes.
#include "mproc/codec.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <typeinfo>
#include <utility>
#include <variant>

#include "demangle.hpp"
#include "heap/heap.hpp"
#include "mproc/shared_heap.hpp"
#include "os/os_heap.hpp"

namespace mproc {

namespace {

std::string attempts_note(int attempts) {
  return attempts > 1 ? "; " + std::to_string(attempts) + " attempts were made, each losing its worker" : "";
}

std::string how_it_ended(int signal, int exit_code) {
  return signal ? "died from signal " + std::to_string(signal) + " (" + strsignal(signal) + ")"
                : "exited with code " + std::to_string(exit_code);
}

std::string mebibytes(std::size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

}  // namespace

WorkerLost::WorkerLost(pid_t pid, int signal, int exit_code, int attempts)
    : WorkerLost("mproc: worker " + std::to_string(pid) + " " + how_it_ended(signal, exit_code) +
                     " while running the task" + attempts_note(attempts),
                 pid, signal, exit_code, attempts) {}

WorkerLost::WorkerLost(std::string what, pid_t pid, int signal, int exit_code, int attempts)
    : Error(what), pid_(pid), signal_(signal), exit_code_(exit_code), attempts_(attempts) {}

MemoryLimitError::MemoryLimitError(pid_t pid, int signal, int exit_code, std::size_t limit, std::size_t used,
                                   int attempts)
    : WorkerLost("mproc: worker " + std::to_string(pid) + " ran out of memory while running the task: past its " +
                     "memory_limit of " + std::to_string(limit) + " bytes (" + mebibytes(limit) + ")" +
                     (used ? ", having used " + std::to_string(used) + " bytes (" + mebibytes(used) + ")" : "") +
                     "; it " + how_it_ended(signal, exit_code) + attempts_note(attempts),
                 pid, signal, exit_code, attempts),
      limit_(limit),
      used_(used) {}

namespace detail {

namespace {

// Where a frame stops crossing through a ring (bench_heap's BM_ApplyBytes, which on the loaded
// 2-core VM here put the crossover between 64 KiB and 1 MiB, run to run). Below it, the ring's two
// copies cost no more than the heap's shared lock and cache misses; above it, a frame could also
// outgrow the ring's free space (1 MiB in all), and such a frame waits until its worker is idle,
// while a note always fits.
constexpr std::size_t kHeapSpillBytes = std::size_t{256} << 10;
std::atomic<std::size_t> spill_bytes_now{kHeapSpillBytes};

}  // namespace

std::size_t heap_spill_bytes() noexcept { return spill_bytes_now.load(std::memory_order_relaxed); }

void set_heap_spill_bytes(std::size_t bytes) noexcept {
  spill_bytes_now.store(bytes ? bytes : kHeapSpillBytes, std::memory_order_relaxed);
}

void advise_fresh_buffer(void* p, std::size_t bytes) noexcept {
  os::advise_huge_pages(p, bytes);
  // Then committed in one call, before the copy: on a VM here, 64 MB copied into fresh huge pages
  // took 19-55 ms faulted in by the copy itself, 3.3 ms populated and then 6.7 ms copied.
  os::populate_pages(p, bytes);
}

void map_for_reading(const void* p, std::size_t bytes) noexcept {
  if (in_shared_heap(p, bytes)) heap::populate(p, bytes);
}

void encode_heap_span(Writer& w, const void* data, std::size_t bytes, std::size_t count) {
  if (count && !in_shared_heap(data, bytes))
    throw SerializationError(
        "mproc: a span crosses to another process only when it lies in the shared heap "
        "(mproc::shared_resource()): send the values themselves (std::vector)");
  auto at = reinterpret_cast<std::uintptr_t>(count ? data : nullptr);
  auto n = static_cast<std::uint64_t>(count);
  w.write(&at, sizeof at);
  w.write(&n, sizeof n);
}

const void* decode_heap_span(Reader& r, std::size_t element_bytes, std::size_t& count) {
  std::uintptr_t at = 0;
  std::uint64_t n = 0;
  r.read(&at, sizeof at);
  r.read(&n, sizeof n);
  const auto* p = reinterpret_cast<const void*>(at);
  // Only the heap is followed: a span naming anything else (a forged one) is refused.
  if (n && (n > SIZE_MAX / element_bytes || !in_shared_heap(p, static_cast<std::size_t>(n) * element_bytes)))
    throw SerializationError("mproc: a span received names " + std::to_string(n) + " elements outside the shared heap");
  count = static_cast<std::size_t>(n);
  return n ? p : nullptr;
}

namespace {
// The drop functions of the spares this thread holds (a handful of types at most).
thread_local std::array<void (*)() noexcept, 8> t_spares{};
}  // namespace

void note_spare(void (*drop)() noexcept) noexcept {
  for (auto& d : t_spares) {
    if (d == drop) return;
    if (!d) {
      d = drop;
      return;
    }
  }
  drop();  // more kinds than kept: this one is not kept
}

bool release_spares() noexcept {
  bool any = false;
  for (auto& d : t_spares) {
    if (d) d();
    any |= d != nullptr;
    d = nullptr;
  }
  return any;
}

bool spares_held() noexcept { return t_spares[0] != nullptr; }

void Writer::free_storage(std::byte* data, bool heap) noexcept {
  if (heap)
    heap::deallocate(data);
  else
    delete[] data;
}

void Writer::swap(Writer& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(size_, other.size_);
  std::swap(owner_, other.owner_);
  // Bit-fields: no references to them, so no std::swap.
  const std::size_t capacity = capacity_;
  const bool heap = heap_, spill = spill_;
  set_capacity(other.capacity_);
  heap_ = other.heap_;
  spill_ = other.spill_;
  other.set_capacity(capacity);
  other.heap_ = heap;
  other.spill_ = spill;
}

namespace {

// The memory buffer a spilling Writer of this thread left when it grew into the heap, given back
// to it by release_heap() for its next frame. Otherwise each big frame would grow from nothing
// again, and the buffers freed past malloc's trim threshold go back to the kernel: a worker
// answering a map's big chunks faulted a quarter megabyte back in per chunk (BM_ArticleMap 4 ->
// 10 ms). At most one per thread, smaller than heap_spill_bytes(); new[]'s.
struct SpareBuffer {
  std::unique_ptr<std::byte[]> data;
  std::size_t capacity = 0;
};
thread_local SpareBuffer t_spare;

}  // namespace

void Writer::reserve(std::size_t n) {
  if (n <= capacity_) return;
  std::size_t capacity = std::max<std::size_t>({n, capacity_ * 2, 256});
  std::byte* data = nullptr;
  bool heap = false;
  if (spill_ && capacity >= heap_spill_bytes()) {
    try {
      data = static_cast<std::byte*>(heap::allocate(capacity, alignof(std::max_align_t)));
      heap = true;
      // Named before it holds anything: a process that dies from here on leaves it to the owner
      // word's reader (the block held before, freed below, is lost if it dies in between).
      if (owner_) owner_->store(data, std::memory_order_release);
      // The frame is written whole next: its pages mapped in one call, not by a fault each.
      if (n >= kFreshBufferAdvice) heap::populate(data, n);
    } catch (const std::bad_alloc&) {
      // The heap is exhausted: this frame crosses through the ring, as it would below the threshold.
    }
  }
  if (!data) {
    data = new std::byte[capacity];
    if (owner_ && heap_) owner_->store(nullptr, std::memory_order_release);  // before it is freed
  }
  if (size_) std::memcpy(data, data_, size_);
  if (heap && data_ && !heap_) {
    // Kept for release_heap(): the thread's next frame grows into it again.
    t_spare.data.reset(std::exchange(data_, nullptr));
    t_spare.capacity = capacity_;
  }
  free_storage(std::exchange(data_, data), heap_);
  heap_ = heap;
  set_capacity(capacity);
}

void Writer::release_heap() noexcept {
  if (!heap_) return;
  data_ = nullptr;  // the block is its new owner's
  heap_ = false;
  size_ = 0;
  set_capacity(0);
  if (owner_) owner_->store(nullptr, std::memory_order_release);
  if (t_spare.data) {
    data_ = t_spare.data.release();
    set_capacity(std::exchange(t_spare.capacity, 0));
  }
}

void Reader::throw_short(std::size_t wanted) const {
  throw SerializationError("mproc: truncated data: wanted " + std::to_string(wanted) + " bytes, " +
                           std::to_string(remaining()) + " left");
}

void throw_bad_length(unsigned long long length, std::size_t remaining) {
  throw SerializationError("mproc: corrupt data: a length of " + std::to_string(length) + " with only " +
                           std::to_string(remaining) + " bytes left");
}

void rethrow_as_serialization_error(std::string_view what_was_done) {
  std::string what = "mproc: ";
  what += what_was_done;
  try {
    throw;
  } catch (const std::exception& e) {
    what += " failed: ";
    what += e.what();
  } catch (...) {
    what += " failed";
  }
  throw SerializationError(what);
}

std::string demangle(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

namespace {

// An exception of a standard type that cannot be built from a message keeps its what() here.
template <class Base>
class WithMessage : public Base {
 public:
  explicit WithMessage(std::string what) : what_(std::move(what)) {}
  [[nodiscard]] const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::string what_;
};

class SystemErrorWithMessage : public std::system_error {
 public:
  SystemErrorWithMessage(std::error_code ec, std::string what) : std::system_error(ec), what_(std::move(what)) {}
  [[nodiscard]] const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::string what_;
};

struct ExceptionType {
  const std::type_info* type = nullptr;
  std::string name;
  ExceptionFactory make = nullptr;
};

// Append-only and read without a lock: a worker forked while another thread registers must
// never find a lock held. Readers see entries [0, count).
class Registry {
 public:
  Registry() {
    add<std::exception>([](const std::string& w) { return std::make_exception_ptr(WithMessage<std::exception>(w)); });
    add<std::bad_alloc>([](const std::string&) { return std::make_exception_ptr(std::bad_alloc()); });
    add<std::bad_cast>([](const std::string& w) { return std::make_exception_ptr(WithMessage<std::bad_cast>(w)); });
    add<std::bad_optional_access>(
        [](const std::string& w) { return std::make_exception_ptr(WithMessage<std::bad_optional_access>(w)); });
    add<std::bad_variant_access>(
        [](const std::string& w) { return std::make_exception_ptr(WithMessage<std::bad_variant_access>(w)); });
    add_simple<std::logic_error>();
    add_simple<std::invalid_argument>();
    add_simple<std::domain_error>();
    add_simple<std::length_error>();
    add_simple<std::out_of_range>();
    add_simple<std::runtime_error>();
    add_simple<std::range_error>();
    add_simple<std::overflow_error>();
    add_simple<std::underflow_error>();
    add_simple<Error>();
    add_simple<TimeoutError>();
    add_simple<SerializationError>();
    add_simple<PoolNotRunning>();
    add_simple<Empty>();
    add_simple<Full>();
    add_simple<BrokenBarrierError>();
    add_simple<EOFError>();
    add_simple<Interrupted>();
    add_simple<CancelledError>();
  }

  void add(const std::type_info& type, ExceptionFactory make) {
    std::lock_guard lock(mu_);
    std::size_t n = count_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < n; ++i)
      if (*entries_[i].type == type) return;
    if (n == entries_.size()) throw std::length_error("mproc::register_exception: too many exception types");
    entries_[n] = ExceptionType{&type, demangle(type), make};
    count_.store(n + 1, std::memory_order_release);
  }

  const ExceptionType* find(const std::type_info& type) const noexcept {
    std::size_t n = count_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i)
      if (*entries_[i].type == type) return &entries_[i];
    return nullptr;
  }

  const ExceptionType* find(std::string_view name) const noexcept {
    std::size_t n = count_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i)
      if (entries_[i].name == name) return &entries_[i];
    return nullptr;
  }

 private:
  template <class T>
  void add(ExceptionFactory make) {
    add(typeid(T), make);
  }
  template <class T>
  void add_simple() {
    add(typeid(T), [](const std::string& w) { return std::make_exception_ptr(T(w)); });
  }

  std::mutex mu_;  // serializes writers only
  std::array<ExceptionType, 256> entries_{};
  std::atomic<std::size_t> count_{0};
};

Registry& registry() {
  static Registry r;
  return r;
}

enum class Kind : std::uint8_t { registered, system_error, remote, worker_lost, memory_limit };

void put_string(Writer& w, std::string_view s) {
  auto n = static_cast<std::uint32_t>(std::min<std::size_t>(s.size(), UINT32_MAX));
  w.write(&n, sizeof n);
  w.write(s.data(), n);
}

std::string get_string(Reader& r) {
  std::uint32_t n = 0;
  r.read(&n, sizeof n);
  const std::byte* p = r.take(n);
  return std::string(reinterpret_cast<const char*>(p), n);
}

template <class T>
void put(Writer& w, T v) {
  w.write(&v, sizeof v);
}
template <class T>
T get(Reader& r) {
  T v{};
  r.read(&v, sizeof v);
  return v;
}

}  // namespace

void register_exception_type(const std::type_info& type, ExceptionFactory make) { registry().add(type, make); }

void encode_exception(Writer& w, const std::exception_ptr& e) {
  const std::type_info* type = nullptr;
  std::string what;
  try {
    std::rethrow_exception(e);
  } catch (const MemoryLimitError& lost) {
    put(w, Kind::memory_limit);
    put<std::int32_t>(w, lost.pid());
    put<std::int32_t>(w, lost.signal());
    put<std::int32_t>(w, lost.exit_code());
    put<std::uint64_t>(w, lost.limit());
    put<std::uint64_t>(w, lost.used());
    put<std::int32_t>(w, lost.attempts());
    return;
  } catch (const WorkerLost& lost) {
    put(w, Kind::worker_lost);
    put<std::int32_t>(w, lost.pid());
    put<std::int32_t>(w, lost.signal());
    put<std::int32_t>(w, lost.exit_code());
    return;
  } catch (const RemoteError& remote) {
    put(w, Kind::remote);
    put_string(w, remote.type_name());
    put_string(w, remote.what());
    return;
  } catch (const std::system_error& se) {
    type = abi::__cxa_current_exception_type();
    if (*type == typeid(std::system_error) || *type == typeid(SystemErrorWithMessage)) {
      put(w, Kind::system_error);
      put<std::int32_t>(w, se.code().value());
      put<std::uint8_t>(w, se.code().category() == std::generic_category() ? 0 : 1);
      put_string(w, se.what());
      return;
    }
    what = se.what();
  } catch (const std::exception& ex) {
    type = abi::__cxa_current_exception_type();
    what = ex.what();
  } catch (...) {
    type = abi::__cxa_current_exception_type();
  }
  const ExceptionType* known = type ? registry().find(*type) : nullptr;
  if (known) {
    put(w, Kind::registered);
    put_string(w, known->name);
  } else {
    put(w, Kind::remote);
    put_string(w, type ? demangle(*type) : std::string("unknown"));
  }
  put_string(w, what);
}

std::exception_ptr decode_exception(Reader& r) {
  switch (get<Kind>(r)) {
    case Kind::worker_lost: {
      auto pid = get<std::int32_t>(r);
      auto sig = get<std::int32_t>(r);
      auto code = get<std::int32_t>(r);
      return std::make_exception_ptr(WorkerLost(pid, sig, code));
    }
    case Kind::memory_limit: {
      auto pid = get<std::int32_t>(r);
      auto sig = get<std::int32_t>(r);
      auto code = get<std::int32_t>(r);
      auto limit = get<std::uint64_t>(r);
      auto used = get<std::uint64_t>(r);
      auto attempts = get<std::int32_t>(r);
      return std::make_exception_ptr(MemoryLimitError(pid, sig, code, limit, used, attempts));
    }
    case Kind::system_error: {
      auto code = get<std::int32_t>(r);
      auto generic = get<std::uint8_t>(r) == 0;
      std::error_code ec(code, generic ? std::generic_category() : std::system_category());
      return std::make_exception_ptr(SystemErrorWithMessage(ec, get_string(r)));
    }
    case Kind::registered: {
      std::string name = get_string(r);
      std::string what = get_string(r);
      if (const ExceptionType* known = registry().find(name)) return known->make(what);
      return std::make_exception_ptr(RemoteError(std::move(name), what));
    }
    case Kind::remote: {
      std::string name = get_string(r);
      std::string what = get_string(r);
      return std::make_exception_ptr(RemoteError(std::move(name), what));
    }
  }
  throw SerializationError("mproc: corrupt data: unknown kind of exception");
}

}  // namespace detail
}  // namespace mproc
