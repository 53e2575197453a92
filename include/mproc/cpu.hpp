// cpu.hpp: cpu_count and process_cpu_count — how many CPUs there are, and how many this process may use.
#pragma once

namespace mproc {

// Logical CPUs of the machine that are online (Python's os.cpu_count()); 1 if unknown.
unsigned cpu_count() noexcept;

// CPUs this process may use: its affinity mask, lowered further by a cgroup v2 CPU quota
// (/sys/fs/cgroup/cpu.max, rounded up: as a container sees its own) — Python 3.13's
// os.process_cpu_count(), plus the quota. Pool's default size. Never less than 1.
unsigned process_cpu_count() noexcept;

}  // namespace mproc
