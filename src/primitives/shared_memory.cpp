#include "mproc/shared_memory.hpp"

#include <fcntl.h>

#include <stdexcept>
#include <system_error>

#include "os/os.hpp"
#include "primitives/tracker.hpp"

namespace mproc {
namespace {

std::string strip_slash(std::string_view name) {
  while (!name.empty() && name.front() == '/') name.remove_prefix(1);
  if (name.empty()) throw std::invalid_argument("mproc::SharedMemory: empty name");
  return std::string(name);
}

std::string random_name() {
  unsigned char bytes[16];
  detail::os::random_bytes(bytes, sizeof bytes);
  static constexpr char hex[] = "0123456789abcdef";
  std::string name = "psm_";
  for (unsigned char b : bytes) {
    name += hex[b >> 4];
    name += hex[b & 15];
  }
  return name;
}

}  // namespace

SharedMemory SharedMemory::create(std::size_t size) {
  if (size == 0) throw std::invalid_argument("mproc::SharedMemory::create: size must be positive");
  for (;;) {
    try {
      return create(size, random_name());
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::file_exists) throw;  // a clash of 128 random bits: try again
    }
  }
}

SharedMemory SharedMemory::create(std::size_t size, std::string_view name_in) {
  if (size == 0) throw std::invalid_argument("mproc::SharedMemory::create: size must be positive");
  std::string name = strip_slash(name_in);
  std::string path = "/" + name;
  // Before the block exists: a tracker that cannot start leaves nothing to clean up.
  detail::tracker_start();
  auto fd = detail::os::shm_open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
  void* p = nullptr;
  try {
    detail::os::ftruncate(fd.get(), size);
    p = detail::os::map_fd(fd.get(), size);
  } catch (...) {
    try {
      detail::os::shm_unlink(path);
    } catch (...) {
    }
    throw;
  }
  detail::tracker_register(path);
  return SharedMemory(std::move(name), static_cast<std::byte*>(p), size);
}

SharedMemory SharedMemory::attach(std::string_view name_in) {
  std::string name = strip_slash(name_in);
  auto fd = detail::os::shm_open("/" + name, O_RDWR, 0600);
  std::size_t size = detail::os::file_size(fd.get());
  if (size == 0) throw std::invalid_argument("mproc::SharedMemory::attach: the block is empty");
  void* p = detail::os::map_fd(fd.get(), size);
  return SharedMemory(std::move(name), static_cast<std::byte*>(p), size);
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : name_(std::move(other.name_)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    close();
    name_ = std::move(other.name_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void SharedMemory::close() noexcept {
  if (data_) detail::os::unmap(data_, size_);
  data_ = nullptr;
}

void SharedMemory::unlink() {
  std::string path = "/" + name_;
  detail::os::shm_unlink(path);
  detail::tracker_unregister(path);
}

}  // namespace mproc
