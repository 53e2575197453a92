// Tests of cpu_count and process_cpu_count: the cgroup quota read from fake /proc and /sys trees
// (v1, v2, nested, "max", missing files) and the MPROC_CPU_COUNT override.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "mproc/cpu.hpp"

namespace fs = std::filesystem;

namespace {

// A temporary root for fake /proc and /sys files, removed with the object.
class FakeRoot {
 public:
  FakeRoot() {
    std::string pattern = (fs::temp_directory_path() / "mproc_cpu_XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp");
    dir_ = pattern;
  }
  ~FakeRoot() { fs::remove_all(dir_); }
  FakeRoot(const FakeRoot&) = delete;
  FakeRoot& operator=(const FakeRoot&) = delete;

  void write(const std::string& path, const std::string& text) const {
    fs::path file = fs::path(dir_ + path);
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
  }
  [[nodiscard]] unsigned limit() const { return mproc::detail::cgroup_cpu_limit(dir_); }

 private:
  std::string dir_;
};

constexpr const char* kV2Mount = "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
constexpr const char* kV1Mount =
    "25 23 0:22 / /sys/fs/cgroup/memory rw shared:9 - cgroup cgroup rw,memory\n"
    "26 23 0:23 / /sys/fs/cgroup/cpu,cpuacct rw shared:10 - cgroup cgroup rw,cpu,cpuacct\n";

// Sets MPROC_CPU_COUNT for the lifetime of the object.
class Env {
 public:
  explicit Env(const char* value) { ::setenv("MPROC_CPU_COUNT", value, 1); }
  ~Env() { ::unsetenv("MPROC_CPU_COUNT"); }
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
};

}  // namespace

// The process's own cgroup, not the root's file; the least quota on the way up wins, rounded up.
TEST(cpu_Cgroup, V2NestedTakesTheLeastQuotaUpToTheMount) {
  FakeRoot root;
  root.write("/proc/self/cgroup", "0::/a/b/c\n");
  root.write("/proc/self/mountinfo", kV2Mount);
  root.write("/sys/fs/cgroup/a/b/c/cpu.max", "max 100000\n");
  root.write("/sys/fs/cgroup/a/b/cpu.max", "250000 100000\n");
  root.write("/sys/fs/cgroup/a/cpu.max", "400000 100000\n");
  root.write("/sys/fs/cgroup/other/cpu.max", "100000 100000\n");
  EXPECT_EQ(root.limit(), 3u);
  root.write("/sys/fs/cgroup/a/b/c/cpu.max", "50000 100000\n");
  EXPECT_EQ(root.limit(), 1u);
}

TEST(cpu_Cgroup, V2MaxEverywhereAndMissingFilesMeanNoLimit) {
  FakeRoot root;
  EXPECT_EQ(root.limit(), 0u);  // no /proc at all
  root.write("/proc/self/cgroup", "0::/user.slice/session-1.scope\n");
  EXPECT_EQ(root.limit(), 0u);  // no cpu.max anywhere
  root.write("/proc/self/mountinfo", kV2Mount);
  root.write("/sys/fs/cgroup/user.slice/cpu.max", "max 100000\n");
  root.write("/sys/fs/cgroup/user.slice/session-1.scope/cpu.max", "garbage\n");
  EXPECT_EQ(root.limit(), 0u);
}

// Without mountinfo, v2 is looked for where it usually is.
TEST(cpu_Cgroup, V2WithoutMountinfoUsesSysFsCgroup) {
  FakeRoot root;
  root.write("/proc/self/cgroup", "0::/job\n");
  root.write("/sys/fs/cgroup/job/cpu.max", "150000 100000\n");
  EXPECT_EQ(root.limit(), 2u);
}

// A container's view: the mount shows the container's own cgroup as its root (mountinfo's
// fourth field), so the path /proc/self/cgroup names is taken below that root.
TEST(cpu_Cgroup, V2MountOfANonRootCgroup) {
  FakeRoot root;
  root.write("/proc/self/cgroup", "0::/docker/abc/app\n");
  root.write("/proc/self/mountinfo", "40 30 0:26 /docker/abc /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n");
  root.write("/sys/fs/cgroup/cpu.max", "200000 100000\n");
  root.write("/sys/fs/cgroup/app/cpu.max", "max 100000\n");
  EXPECT_EQ(root.limit(), 2u);
}

TEST(cpu_Cgroup, V1CpuControllerQuotaAndPeriod) {
  FakeRoot root;
  root.write("/proc/self/cgroup", "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n");
  root.write("/proc/self/mountinfo", kV1Mount);
  root.write("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "150000\n");
  root.write("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  root.write("/sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_quota_us", "-1\n");
  root.write("/sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_period_us", "100000\n");
  root.write("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  root.write("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(root.limit(), 2u);
  root.write("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
  EXPECT_EQ(root.limit(), 0u);
  root.write("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "\n");
  EXPECT_EQ(root.limit(), 0u);
}

// The cpu controller mounted alone (as on this project's own machine): found through mountinfo,
// not at the usual cpu,cpuacct.
TEST(cpu_Cgroup, V1CpuControllerMountedAlone) {
  FakeRoot root;
  root.write("/proc/self/cgroup", "2:cpuacct:/\n1:cpu:/job\n0::/\n");
  root.write("/proc/self/mountinfo",
             "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
             "32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
             "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
  root.write("/sys/fs/cgroup/cpu/job/cpu.cfs_quota_us", "50000\n");
  root.write("/sys/fs/cgroup/cpu/job/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(root.limit(), 1u);
}

// Hybrid: a v1 cpu controller and a v2 hierarchy both apply; the lesser quota wins.
TEST(cpu_Cgroup, HybridTakesTheLeastOfV1AndV2) {
  FakeRoot root;
  root.write("/proc/self/cgroup", "4:cpu,cpuacct:/slice\n0::/slice\n");
  root.write("/proc/self/mountinfo",
             std::string(kV1Mount) + "31 23 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
  root.write("/sys/fs/cgroup/cpu,cpuacct/slice/cpu.cfs_quota_us", "300000\n");
  root.write("/sys/fs/cgroup/cpu,cpuacct/slice/cpu.cfs_period_us", "100000\n");
  root.write("/sys/fs/cgroup/unified/slice/cpu.max", "500000 100000\n");
  EXPECT_EQ(root.limit(), 3u);
  root.write("/sys/fs/cgroup/unified/slice/cpu.max", "100000 100000\n");
  EXPECT_EQ(root.limit(), 1u);
}

TEST(cpu_Override, ParsedAsPythonParsesPythonCpuCount) {
  using mproc::detail::cpu_count_override;
  EXPECT_EQ(cpu_count_override(nullptr), std::nullopt);
  EXPECT_EQ(cpu_count_override(""), std::nullopt);
  EXPECT_EQ(cpu_count_override("default"), std::nullopt);
  EXPECT_EQ(cpu_count_override("3"), 3u);
  for (const char* bad : {"0", "-1", "abc", "3x", " 3", "99999999999999999999"})
    EXPECT_THROW((void)cpu_count_override(bad), std::invalid_argument) << bad;
}

TEST(cpu_Override, EnvironmentOverridesBothCounts) {
  {
    Env env("5");
    EXPECT_EQ(mproc::process_cpu_count(), 5u);
    EXPECT_EQ(mproc::cpu_count(), 5u);
  }
  {
    Env env("zero");
    EXPECT_THROW((void)mproc::process_cpu_count(), std::invalid_argument);
    EXPECT_THROW((void)mproc::cpu_count(), std::invalid_argument);
  }
  Env env("default");
  EXPECT_GE(mproc::process_cpu_count(), 1u);
  EXPECT_LE(mproc::process_cpu_count(), mproc::cpu_count());
}
