#include "backend/mpi/modules.hpp"

#include <dlfcn.h>
#include <link.h>
#include <sys/auxv.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "mproc/errors.hpp"
#include "mproc/mpi.hpp"
#include "os/os.hpp"

namespace mproc::detail::mpi {
namespace {

// Where the program itself is loaded: its program headers lie in its first segment.
std::uintptr_t program_base() {
  static const std::uintptr_t base = [] {
    Dl_info info{};
    const auto* phdr = reinterpret_cast<const void*>(getauxval(AT_PHDR));
    if (!phdr || !dladdr(phdr, &info) || !info.dli_fbase)
      throw std::runtime_error("mproc: MpiPool: cannot find where the program is loaded (dladdr)");
    return reinterpret_cast<std::uintptr_t>(info.dli_fbase);
  }();
  return base;
}

struct Registry {
  std::mutex mu;
  std::vector<std::string> names{""};                 // guarded by mu
  std::unordered_map<std::uintptr_t, Located> cache;  // guarded by mu
};
Registry& registry() {
  static Registry r;
  return r;
}

// A loaded module as dl_iterate_phdr sees it: where it starts (as dladdr's dli_fbase) and how
// far its segments reach.
struct Span {
  std::uintptr_t base = 0;
  std::uint64_t size = 0;
  bool found = false;
};

struct SpanQuery {
  const std::string* name;  // empty: the program (the first entry)
  bool first = true;
  Span span;
};

int find_span(dl_phdr_info* info, std::size_t, void* data) {
  auto* q = static_cast<SpanQuery*>(data);
  bool first = q->first;
  q->first = false;
  if (q->name->empty() ? !first : (!info->dlpi_name || *q->name != info->dlpi_name)) return 0;
  std::uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    lo = std::min<std::uintptr_t>(lo, info->dlpi_addr + ph.p_vaddr);
    hi = std::max<std::uintptr_t>(hi, info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
  }
  if (lo == UINTPTR_MAX) return 0;
  Dl_info dl{};
  if (!dladdr(reinterpret_cast<const void*>(lo), &dl) || !dl.dli_fbase) return 0;
  q->span.base = reinterpret_cast<std::uintptr_t>(dl.dli_fbase);
  q->span.size = hi - q->span.base;
  q->span.found = true;
  return 1;
}

Span span_of(const std::string& name) {
  SpanQuery q{&name, true, {}};
  dl_iterate_phdr(find_span, &q);
  return q.span;
}

int find_build_id(dl_phdr_info* info, std::size_t, void* data) {
  auto* fp = static_cast<Fingerprint*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const auto* p = reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr);
    const auto* end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      ElfW(Nhdr) note;
      std::memcpy(&note, p, sizeof note);
      const unsigned char* name = p + sizeof note;
      const unsigned char* desc = name + ((note.n_namesz + 3) & ~3u);
      p = desc + ((note.n_descsz + 3) & ~3u);
      if (p > end) break;
      if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
        fp->build_id_size = std::min<std::uint32_t>(note.n_descsz, sizeof fp->build_id);
        std::memcpy(fp->build_id, desc, fp->build_id_size);
        return 1;
      }
    }
  }
  return 1;  // only the first entry, the program, is of interest
}

std::string hex(const std::uint8_t* p, std::size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

}  // namespace

Located locate(const void* addr) {
  auto& r = registry();
  const auto key = reinterpret_cast<std::uintptr_t>(addr);
  std::lock_guard lock(r.mu);
  if (auto it = r.cache.find(key); it != r.cache.end()) return it->second;
  Dl_info info{};
  if (!dladdr(addr, &info) || !info.dli_fbase)
    throw SerializationError(
        "mproc: MpiPool: a function to send lies in no loaded module, so no other rank can find it");
  const auto base = reinterpret_cast<std::uintptr_t>(info.dli_fbase);
  std::string name = base == program_base() ? std::string() : std::string(info.dli_fname ? info.dli_fname : "");
  if (!name.empty() && name.find('/') == std::string::npos)
    throw SerializationError("mproc: MpiPool: cannot name the module of a function to send");
  Located where{0, key - base};
  auto found = std::find(r.names.begin(), r.names.end(), name);
  where.module = static_cast<std::uint32_t>(found - r.names.begin());
  if (found == r.names.end()) r.names.push_back(std::move(name));
  r.cache.emplace(key, where);
  return where;
}

std::string module_name(std::uint32_t module) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  return r.names.at(module);
}

std::uint32_t module_count() {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  return static_cast<std::uint32_t>(r.names.size());
}

ModuleMap::ModuleMap() { add(0, ""); }

void ModuleMap::add(std::uint32_t module, const std::string& name) {
  Span s = span_of(name);
  if (module >= modules_.size()) modules_.resize(module + 1);
  modules_[module] = Module{s.base, s.size, {}};
  if (!s.found)
    modules_[module].missing =
        "mproc: MpiPool: rank 0 sends a function from " + name + ", which this rank has not loaded";
}

std::uintptr_t ModuleMap::address(std::uint32_t module, std::uint64_t offset) const {
  if (module < modules_.size() && !modules_[module].missing.empty()) throw std::runtime_error(modules_[module].missing);
  if (module >= modules_.size() || !modules_[module].base)
    throw std::runtime_error("mproc: MpiPool: a task names a module rank 0 never announced");
  if (offset >= modules_[module].size)
    throw std::runtime_error("mproc: MpiPool: a task names a function past the end of its module");
  return modules_[module].base + offset;
}

Fingerprint fingerprint_of_this_program() {
  Fingerprint fp;
  dl_iterate_phdr(find_build_id, &fp);
  Located anchor = locate(reinterpret_cast<const void*>(&mproc::mpi::serve));
  fp.anchor_module = anchor.module;
  fp.anchor_offset = anchor.offset;
  if (auto exe = os::file_stamp("/proc/self/exe")) {
    fp.exe_size = exe->size;
    fp.exe_mtime = exe->mtime;
  }
  return fp;
}

std::string compare(const Fingerprint& a, const Fingerprint& b) {
  if (a.build_id_size && b.build_id_size) {
    if (a.build_id_size != b.build_id_size || std::memcmp(a.build_id, b.build_id, a.build_id_size) != 0)
      return "build id " + hex(b.build_id, b.build_id_size) + ", not " + hex(a.build_id, a.build_id_size);
  } else if (a.exe_size != b.exe_size || a.exe_mtime != b.exe_mtime) {
    return "a program of " + std::to_string(b.exe_size) + " bytes modified at " + std::to_string(b.exe_mtime) +
           ", not " + std::to_string(a.exe_size) + " bytes at " + std::to_string(a.exe_mtime);
  }
  if (a.anchor_module != b.anchor_module || a.anchor_offset != b.anchor_offset)
    return "mproc::mpi::serve at offset " + std::to_string(b.anchor_offset) + ", not " +
           std::to_string(a.anchor_offset);
  return {};
}

}  // namespace mproc::detail::mpi
