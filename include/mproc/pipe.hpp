/// @file
/// pipe.hpp: message connections between processes, as Python's multiprocessing has them —
///
///     Connection<T>   one end: send/recv of T, send_bytes/recv_bytes, poll, close
///     Pipe<T>(duplex) a connected pair of Connections
///     Waitable        what wait() takes: a Connection, or a file descriptor such as a sentinel
///     wait()          waits for any of several connections or process sentinels to be ready
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "mproc/codec.hpp"
#include "mproc/detail/connection_core.hpp"
#include "mproc/errors.hpp"

namespace mproc {

/// One end of a Pipe (multiprocessing.connection.Connection): a close-on-exec stream socket
/// carrying framed messages, so each recv() returns exactly one send(), of any size. Move-only;
/// use one end from one thread at a time (concurrent sends may interleave). A fork copies the
/// descriptor: recv() throws EOFError only once every copy of the other end, in every process,
/// is closed, so close the end a process does not use. Passed to a Process as an lvalue, an end
/// stays the caller's: Python's idiom works as is —
///
///     auto [r, w] = mproc::Pipe<int>(false);
///     mproc::Process p(writer, w);  // void writer(mproc::Connection<int>& w)
///     p.start();
///     w.close();                    // the child has its own copy
///     try { for (;;) use(r.recv()); } catch (const mproc::EOFError&) {}  // once the child ends
/// send() to a closed peer throws std::system_error (EPIPE), never SIGPIPE. Signals arriving
/// during a call do not interrupt it.
template <class T>
class Connection {
  static_assert(Sendable<T>, "mproc::Connection<T>: T must be Sendable (see codec.hpp)");

 public:
  /// An end connected to nothing: closed() is true.
  Connection() = default;
  /// Made by Pipe(); not for users.
  explicit Connection(detail::ConnectionCore core) noexcept : core_(std::move(core)) {}

  /// Blocks while the socket buffer is full, until the peer reads: a message larger than the
  /// buffer sent to oneself, from the thread that would receive it, never returns.
  void send(const T& x);
  /// Blocks until a whole message arrives; EOFError once the peer is closed.
  T recv();
  /// Sends bytes as one message, as they are (not encoded as a T); blocks as send() does.
  ///@{
  void send_bytes(std::span<const std::byte> bytes) { core_.send(bytes); }
  void send_bytes(std::string_view bytes) { core_.send(std::as_bytes(std::span(bytes.data(), bytes.size()))); }
  ///@}
  /// The next whole message as raw bytes, whichever of send() or send_bytes() sent it.
  std::vector<std::byte> recv_bytes();
  /// True when data (or end of file) is ready to read; waits up to timeout; poll() does not
  /// wait. Ready may mean the start of a message whose rest is still coming: recv() then waits.
  ///@{
  bool poll() { return core_.poll(detail::Nanos::zero()); }
  template <class Rep, class Period>
  bool poll(std::chrono::duration<Rep, Period> timeout) {
    return core_.poll(detail::to_nanos(timeout));
  }
  ///@}
  /// Closes this process's copy only; later calls throw std::logic_error, as does sending on a
  /// read-only end or receiving on a write-only one.
  void close() noexcept { core_.close(); }
  /// Whether this end was closed (or never connected).
  [[nodiscard]] bool closed() const noexcept { return core_.closed(); }
  /// Whether this end may recv(): false for the writer of a one-way Pipe.
  [[nodiscard]] bool readable() const noexcept { return core_.readable(); }
  /// Whether this end may send(): false for the reader of a one-way Pipe.
  [[nodiscard]] bool writable() const noexcept { return core_.writable(); }
  /// The socket's descriptor, for wait() or poll(2); -1 once closed. Still owned by this end.
  [[nodiscard]] int fileno() const noexcept { return core_.fileno(); }

  /// What a Process keeps of an end given to it as an lvalue: a duplicate fd, for the child.
  friend Connection copy_for_child(const Connection& c) { return Connection(c.core_.dup()); }

 private:
  detail::ConnectionCore core_;
};

/// A connected pair. duplex: both ends send and receive; otherwise (reader, writer), as Python.
/// Make it before the fork that must share it; it names nothing, so nothing is left behind.
template <class T>
std::pair<Connection<T>, Connection<T>> Pipe(bool duplex = true) {
  auto [a, b] = detail::ConnectionCore::pair(duplex);
  return {Connection<T>(std::move(a)), Connection<T>(std::move(b))};
}

/// Something wait() can wait for: a Connection, or an fd such as Process::sentinel().
struct Waitable {
  /// A descriptor, such as Process::sentinel().
  Waitable(int file) : fd(file) {}  // NOLINT: implicit, as Python's wait takes ints too
  /// Anything with a fileno(), such as a Connection.
  template <class C>
  requires requires(const C& c) {
    { c.fileno() } -> std::convertible_to<int>;
  }
  Waitable(const C& c) : fd(c.fileno()) {}  // NOLINT
  /// The descriptor wait() polls, and returns when ready.
  int fd;
};

/// The fds of the objects that are ready (multiprocessing.connection.wait): a connection with
/// data or end of file, a sentinel whose process ended. Waits until one is, or until timeout
/// (then an empty vector). Signals do not end the wait early.
///@{
std::vector<int> wait(std::initializer_list<Waitable> objects);
std::vector<int> wait(std::span<const Waitable> objects);
template <class Rep, class Period>
std::vector<int> wait(std::span<const Waitable> objects, std::chrono::duration<Rep, Period> timeout);
template <class Rep, class Period>
std::vector<int> wait(std::initializer_list<Waitable> objects, std::chrono::duration<Rep, Period> timeout) {
  return wait(std::span<const Waitable>(objects.begin(), objects.size()), timeout);
}
///@}

// --- definitions --------------------------------------------------------------------------------

template <class T>
void Connection<T>::send(const T& x) {
  thread_local detail::Writer w;
  w.clear();
  detail::encode(w, x);
  core_.send(w.bytes());
}

template <class T>
T Connection<T>::recv() {
  thread_local detail::Writer w;
  core_.recv(w);
  detail::Reader r(w.bytes());
  return detail::decode<T>(r);
}

template <class T>
std::vector<std::byte> Connection<T>::recv_bytes() {
  detail::Writer w;
  core_.recv(w);
  auto b = w.bytes();
  return std::vector<std::byte>(b.begin(), b.end());
}

inline std::vector<int> wait(std::span<const Waitable> objects) {
  std::vector<int> fds;
  for (const auto& o : objects) fds.push_back(o.fd);
  return detail::wait_fds(fds, {});
}

inline std::vector<int> wait(std::initializer_list<Waitable> objects) {
  return wait(std::span<const Waitable>(objects.begin(), objects.size()));
}

template <class Rep, class Period>
std::vector<int> wait(std::span<const Waitable> objects, std::chrono::duration<Rep, Period> timeout) {
  std::vector<int> fds;
  for (const auto& o : objects) fds.push_back(o.fd);
  return detail::wait_fds(fds, detail::to_nanos(timeout));
}

}  // namespace mproc
