// ConnectionCore: framed messages over an AF_UNIX stream socket pair. A one-way Pipe is a socket
// pair with each end shut down in the unused direction, so that send() can use MSG_NOSIGNAL (a
// closed reader is EPIPE, not SIGPIPE) and both kinds of Pipe behave alike.
#include "mproc/detail/connection_core.hpp"

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <system_error>

#include "mproc/errors.hpp"
#include "os/os.hpp"
#include "os/os_ipc.hpp"

namespace mproc::detail {
namespace {
// A frame longer than this is refused as corrupt rather than allocated.
constexpr std::uint64_t kMaxFrame = std::uint64_t{1} << 36;
}  // namespace

ConnectionCore& ConnectionCore::operator=(ConnectionCore&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    readable_ = o.readable_;
    writable_ = o.writable_;
  }
  return *this;
}

void ConnectionCore::close() noexcept {
  if (fd_ >= 0) os::Fd closer(std::exchange(fd_, -1));
}

ConnectionCore ConnectionCore::dup() const {
  if (fd_ < 0) return ConnectionCore();
  return ConnectionCore(os::dup(fd_).release(), readable_, writable_);
}

void ConnectionCore::check(bool for_write) const {
  if (fd_ < 0) throw std::logic_error("mproc::Connection: the connection is closed");
  if (for_write && !writable_) throw std::logic_error("mproc::Connection: this end is read-only");
  if (!for_write && !readable_) throw std::logic_error("mproc::Connection: this end is write-only");
}

void ConnectionCore::send(std::span<const std::byte> message) {
  check(true);
  std::uint64_t length = message.size();
  os::send_all2(fd_, &length, sizeof length, message.data(), message.size());
}

void ConnectionCore::recv(Writer& out) {
  check(false);
  std::uint64_t length = 0;
  bool got = false;
  try {
    got = os::read_exact(fd_, &length, sizeof length);
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::connection_reset)
      throw EOFError("mproc::Connection::recv: the other end closed mid-message");
    throw;
  }
  if (!got) throw EOFError("mproc::Connection::recv: the other end is closed");
  if (length > kMaxFrame)
    throw SerializationError("mproc::Connection::recv: a frame of " + std::to_string(length) + " bytes");
  out.clear();
  std::byte* p = out.grow(static_cast<std::size_t>(length));
  if (length && !os::read_exact(fd_, p, static_cast<std::size_t>(length)))
    throw EOFError("mproc::Connection::recv: the other end closed mid-message");
}

bool ConnectionCore::poll(OptNanos timeout) {
  check(false);
  return !wait_fds({&fd_, 1}, timeout).empty();
}

std::pair<ConnectionCore, ConnectionCore> ConnectionCore::pair(bool duplex) {
  auto [a, b] = os::stream_socketpair();
  if (duplex) return {ConnectionCore(a.release(), true, true), ConnectionCore(b.release(), true, true)};
  os::shutdown(a.get(), false, true);
  os::shutdown(b.get(), true, false);
  return {ConnectionCore(a.release(), true, false), ConnectionCore(b.release(), false, true)};
}

std::vector<int> wait_fds(std::span<const int> fds, OptNanos timeout) {
  std::vector<os::PollFd> pfds;
  for (int fd : fds) pfds.push_back({fd, false});
  const Deadline deadline = deadline_after(timeout);
  for (;;) {
    int n = os::poll_readable_once(pfds, time_left(deadline));
    if (n > 0) break;
    if (passed(deadline)) return {};
  }
  std::vector<int> ready;
  for (const auto& p : pfds)
    if (p.ready) ready.push_back(p.fd);
  return ready;
}

}  // namespace mproc::detail
