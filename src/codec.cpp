// The non-template half of the codec: buffers, errors, and exceptions crossing processes.
#include "mproc/codec.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <typeinfo>
#include <variant>

#include "demangle.hpp"

namespace mproc {

WorkerLost::WorkerLost(pid_t pid, int signal, int exit_code, int attempts)
    : Error((signal ? "mproc: worker " + std::to_string(pid) + " died from signal " + std::to_string(signal) + " (" +
                          strsignal(signal) + ") while running the task"
                    : "mproc: worker " + std::to_string(pid) + " exited with code " + std::to_string(exit_code) +
                          " while running the task") +
            (attempts > 1 ? "; " + std::to_string(attempts) + " attempts were made, each losing its worker" : "")),
      pid_(pid),
      signal_(signal),
      exit_code_(exit_code),
      attempts_(attempts) {}

namespace detail {

void Writer::reserve(std::size_t n) {
  if (n <= capacity_) return;
  std::size_t capacity = std::max<std::size_t>({n, capacity_ * 2, 256});
  auto data = std::make_unique_for_overwrite<std::byte[]>(capacity);
  if (size_) std::memcpy(data.get(), data_.get(), size_);
  data_ = std::move(data);
  capacity_ = capacity;
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

enum class Kind : std::uint8_t { registered, system_error, remote, worker_lost };

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
