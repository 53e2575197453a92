// modules.hpp: how a function is named across ranks — the module (the program, or a shared
// library) it lives in and its offset there — and the fingerprint that tells whether two ranks
// run the same binary. The loader calls (dladdr, dl_iterate_phdr, getauxval) are all here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mproc::detail::mpi {

// Module 0 is the program itself; others are shared libraries, numbered as rank 0 meets them.
struct Located {
  std::uint32_t module = 0;
  std::uint64_t offset = 0;
};

// Rank 0: where addr lives. Thread-safe; cached. Throws SerializationError for an address
// outside every loaded module.
Located locate(const void* addr);
// Rank 0: the name a module is found by on another rank ("" for the program).
std::string module_name(std::uint32_t module);
std::uint32_t module_count();

// A worker rank: addresses from (module, offset), with the modules rank 0 has named to it.
class ModuleMap {
 public:
  ModuleMap();
  // A module this rank has not loaded is remembered as such: tasks that use it fail.
  void add(std::uint32_t module, const std::string& name);
  // Throws std::runtime_error for an unknown module or an offset past its end.
  [[nodiscard]] std::uintptr_t address(std::uint32_t module, std::uint64_t offset) const;

 private:
  struct Module {
    std::uintptr_t base = 0;
    std::uint64_t size = 0;
    std::string missing;  // why it cannot be used, when it cannot
  };
  std::vector<Module> modules_;
};

// What must agree between ranks for addresses to mean the same: the program's build id (or,
// without one, its size and modification time), and where a known function sits in it.
struct Fingerprint {
  std::uint8_t build_id[32] = {};
  std::uint32_t build_id_size = 0;
  std::uint32_t anchor_module = 0;
  std::uint64_t anchor_offset = 0;
  std::uint64_t exe_size = 0;
  std::int64_t exe_mtime = 0;
};
Fingerprint fingerprint_of_this_program();
// Empty when a and b are the same program; else what differs, in words.
std::string compare(const Fingerprint& a, const Fingerprint& b);

}  // namespace mproc::detail::mpi
