#include "mproc/detail/shared_region.hpp"

#include <unistd.h>

#include "os/os.hpp"

namespace mproc::detail {

std::shared_ptr<void> map_shared_region(std::size_t bytes) {
  static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::size_t size = (bytes + page - 1) / page * page;
  void* p = os::map_shared_anonymous(size);  // anonymous mappings start zeroed
  return std::shared_ptr<void>(p, [size](void* q) { os::unmap(q, size); });
}

}  // namespace mproc::detail
