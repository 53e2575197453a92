#include "mproc/detail/shared_region.hpp"

#include "mproc/detail/region_registry.hpp"
#include "os/os.hpp"

namespace mproc::detail {

std::shared_ptr<void> map_shared_region(std::size_t bytes) {
  const std::size_t page = os::page_size();
  std::size_t size = (bytes + page - 1) / page * page;
  void* p = os::map_shared_anonymous(size);  // anonymous mappings start zeroed
  try {
    add_shared_region(p, size);
  } catch (...) {
    os::unmap(p, size);
    throw;
  }
  return std::shared_ptr<void>(p, [size](void* q) {
    remove_shared_region(q);
    os::unmap(q, size);
  });
}

}  // namespace mproc::detail
