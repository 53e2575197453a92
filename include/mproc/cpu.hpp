// cpu.hpp: cpu_count and process_cpu_count — how many CPUs there are, and how many this process may use.
#pragma once

namespace mproc {

// Logical CPUs of the machine (Python's os.cpu_count()).
unsigned cpu_count() noexcept;

// CPUs this process may use: its affinity mask, lowered further by a cgroup CPU quota
// (Python 3.13's os.process_cpu_count(), plus the quota). Pool's default size.
unsigned process_cpu_count() noexcept;

}  // namespace mproc
