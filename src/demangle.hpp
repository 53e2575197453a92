// demangle.hpp: the readable name of a type, for messages (defined in codec.cpp).
#pragma once

#include <string>
#include <typeinfo>

namespace mproc::detail {

// "std::runtime_error" for typeid(std::runtime_error); the mangled name if it cannot be demangled.
std::string demangle(const std::type_info& type);

}  // namespace mproc::detail
