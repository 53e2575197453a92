// connection_core.hpp: ConnectionCore, the untyped end of a Pipe: a stream socket carrying
// frames of [u64 length][bytes], so messages keep their boundaries at any size.
#pragma once

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "mproc/detail/buffer.hpp"
#include "mproc/detail/wait.hpp"

namespace mproc::detail {

class ConnectionCore {
 public:
  ConnectionCore() = default;
  ConnectionCore(int fd, bool readable, bool writable) noexcept : fd_(fd), readable_(readable), writable_(writable) {}
  ConnectionCore(ConnectionCore&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), readable_(o.readable_), writable_(o.writable_) {}
  ConnectionCore& operator=(ConnectionCore&& o) noexcept;
  ConnectionCore(const ConnectionCore&) = delete;
  ConnectionCore& operator=(const ConnectionCore&) = delete;
  ~ConnectionCore() { close(); }

  void send(std::span<const std::byte> message);
  // Reads the next message into out (cleared first); throws EOFError when the peer has closed.
  void recv(Writer& out);
  bool poll(OptNanos timeout);
  void close() noexcept;
  // Another end on the same socket (a duplicate fd, close-on-exec); closed when this one is.
  [[nodiscard]] ConnectionCore dup() const;
  [[nodiscard]] int fileno() const noexcept { return fd_; }
  [[nodiscard]] bool closed() const noexcept { return fd_ < 0; }
  [[nodiscard]] bool readable() const noexcept { return readable_; }
  [[nodiscard]] bool writable() const noexcept { return writable_; }

  // (first, second) connected ends; duplex false: first only reads, second only writes.
  static std::pair<ConnectionCore, ConnectionCore> pair(bool duplex);

 private:
  void check(bool for_write) const;
  int fd_ = -1;
  bool readable_ = false;
  bool writable_ = false;
};

// Ready fds among fds, waiting up to timeout (none: until one is ready).
std::vector<int> wait_fds(std::span<const int> fds, OptNanos timeout);

}  // namespace mproc::detail
