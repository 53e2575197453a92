// cpu_count and process_cpu_count. The cgroup quota is looked up as the JDK and Go's runtime do:
// this process's cgroup from /proc/self/cgroup, the hierarchy's mount from /proc/self/mountinfo,
// then every cgroup from its own up to the mount, since a parent's quota bounds its children.
#include "mproc/cpu.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "os/os.hpp"

namespace mproc {
namespace detail {
namespace {

// Where a cgroup hierarchy is mounted: mount point, and the cgroup that appears there.
struct Mount {
  std::string root = "/";
  std::string point;
};

// A cgroup hierarchy this process belongs to: v2, or v1's with the cpu controller.
struct Hierarchy {
  bool v2 = false;
  std::string path;  // as /proc/self/cgroup names it
};

std::vector<std::string> split(const std::string& s, char by) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, by)) parts.push_back(part);
  return parts;
}

bool has_item(const std::string& list, const std::string& item) {
  auto items = split(list, ',');
  return std::find(items.begin(), items.end(), item) != items.end();
}

// mountinfo writes a space, tab, newline or backslash in a path as \ and three octal digits.
std::string unescape(const std::string& s) {
  auto digit = [&](std::size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '7'; };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    bool octal = s[i] == '\\' && digit(i + 1) && digit(i + 2) && digit(i + 3);
    if (octal) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<Hierarchy> hierarchies(const std::string& root) {
  std::vector<Hierarchy> found;
  std::ifstream in(root + "/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    auto first = line.find(':');
    auto second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    std::string id = line.substr(0, first);
    std::string controllers = line.substr(first + 1, second - first - 1);
    std::string path = line.substr(second + 1);
    if (id == "0" && controllers.empty())
      found.push_back({true, path});
    else if (has_item(controllers, "cpu"))
      found.push_back({false, path});
  }
  return found;
}

// "id parent major:minor root mount-point options [optional tags] - fstype source super-options"
std::optional<Mount> mount_of(const std::string& root, bool v2) {
  std::ifstream in(root + "/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto fields = split(line, ' ');
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || fields.end() - dash < 4) continue;
    const std::string& type = dash[1];
    bool match = v2 ? type == "cgroup2" : type == "cgroup" && has_item(dash[3], "cpu");
    if (match) return Mount{unescape(fields[3]), unescape(fields[4])};
  }
  return std::nullopt;
}

// Where the hierarchy is when mountinfo does not say: the usual places.
Mount usual_mount(bool v2) { return Mount{"/", v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/cpu,cpuacct"}; }

// path below the mount's root cgroup, "" for the root itself; a cgroup this mount does not show
// (outside its root) is seen as the mount's root, whose quota still bounds this process.
std::string below_mount(const std::string& path, const std::string& mount_root) {
  if (path.find("/..") != std::string::npos) return "";
  std::string base = mount_root == "/" ? "" : mount_root;
  if (path.compare(0, base.size(), base) != 0) return "";
  std::string rest = path.substr(base.size());
  if (!rest.empty() && rest.front() != '/') return "";
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  return rest;
}

std::optional<long long> read_number(const std::string& file) {
  std::ifstream in(file);
  long long n = 0;
  if (in >> n) return n;
  return std::nullopt;
}

// CPUs a quota of quota per period allows, rounded up; 0 for none.
unsigned cpus_of(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return 0;
  return static_cast<unsigned>(std::min<long long>((quota + period - 1) / period, 1 << 30));
}

// The quota set on one cgroup directory; 0 for none ("max", -1, or no such file).
unsigned quota_of(const std::string& dir, bool v2) {
  if (!v2) {
    auto quota = read_number(dir + "/cpu.cfs_quota_us");
    auto period = read_number(dir + "/cpu.cfs_period_us");
    return quota && period ? cpus_of(*quota, *period) : 0;
  }
  std::ifstream in(dir + "/cpu.max");
  std::string quota;
  long long period = 0;
  if (!(in >> quota >> period) || quota == "max") return 0;
  long long q = 0;
  auto [end, ec] = std::from_chars(quota.data(), quota.data() + quota.size(), q);
  return ec == std::errc() && end == quota.data() + quota.size() ? cpus_of(q, period) : 0;
}

// The tighter of two limits, 0 meaning none.
unsigned tighter(unsigned a, unsigned b) { return !a || (b && b < a) ? b : a; }

unsigned limit_of(const std::string& root, const Hierarchy& h) {
  Mount m = mount_of(root, h.v2).value_or(usual_mount(h.v2));
  std::string rel = below_mount(h.path, m.root);
  unsigned limit = 0;
  for (;;) {
    limit = tighter(limit, quota_of(root + m.point + rel, h.v2));
    if (rel.empty()) return limit;
    rel.erase(rel.rfind('/'));
  }
}

}  // namespace

unsigned cgroup_cpu_limit(const std::string& root) {
  unsigned limit = 0;
  for (const auto& h : hierarchies(root)) limit = tighter(limit, limit_of(root, h));
  return limit;
}

std::optional<unsigned> cpu_count_override(const char* value) {
  if (!value || !*value || std::strcmp(value, "default") == 0) return std::nullopt;
  unsigned n = 0;
  const char* end = value + std::strlen(value);
  auto [stop, ec] = std::from_chars(value, end, n);
  if (ec != std::errc() || stop != end || n == 0)
    throw std::invalid_argument(std::string("mproc: MPROC_CPU_COUNT=\"") + value +
                                "\": it must be a positive integer, or \"default\"");
  return n;
}

}  // namespace detail

namespace {
std::optional<unsigned> override_from_environment() {
  return detail::cpu_count_override(std::getenv("MPROC_CPU_COUNT"));
}
}  // namespace

unsigned cpu_count() { return override_from_environment().value_or(detail::os::online_cpus()); }

unsigned process_cpu_count() {
  if (auto n = override_from_environment()) return *n;
  return std::max(detail::tighter(detail::os::affinity_cpus(), detail::cgroup_cpu_limit("")), 1U);
}

}  // namespace mproc
