#include "mproc/cpu.hpp"

#include "os/os.hpp"

namespace mproc {

unsigned cpu_count() noexcept { return detail::os::online_cpus(); }
unsigned process_cpu_count() noexcept { return detail::os::usable_cpus(); }

}  // namespace mproc
