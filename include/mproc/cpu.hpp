/// @file
/// cpu.hpp: cpu_count and process_cpu_count — how many CPUs there are, and how many this process may use.
#pragma once

#include <optional>
#include <string>

namespace mproc {

/// Logical CPUs of the machine that are online (Python's os.cpu_count()); 1 if unknown.
/// MPROC_CPU_COUNT overrides it, as PYTHON_CPU_COUNT does Python's (see process_cpu_count).
unsigned cpu_count();

/// CPUs this process may use: its affinity mask, lowered further by the CPU quota of its own
/// cgroup and of every cgroup above it (found through /proc/self/cgroup and
/// /proc/self/mountinfo; v2's cpu.max, v1's cpu.cfs_quota_us / cpu.cfs_period_us; rounded up) —
/// Python 3.13's os.process_cpu_count(), plus the quota. Pool's default size. Never less than 1.
/// The environment variable MPROC_CPU_COUNT=n (a positive integer) makes both this and
/// cpu_count() return n, as PYTHON_CPU_COUNT does in Python; unset, empty or "default" changes
/// nothing; any other value throws std::invalid_argument (Python refuses to start).
unsigned process_cpu_count();

namespace detail {
/// The CPUs the cgroup quotas allow this process, 0 when none applies. root prefixes every path
/// read ("" on a real system; tests pass a fake tree of /proc and /sys).
unsigned cgroup_cpu_limit(const std::string& root);
/// What MPROC_CPU_COUNT's value asks for: nullopt for none (value null, empty or "default").
std::optional<unsigned> cpu_count_override(const char* value);
}  // namespace detail

}  // namespace mproc
