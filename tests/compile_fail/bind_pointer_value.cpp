// expect: a value bound with mproc::bind_front or mproc::bind_back is a pointer
// A string literal bound is a pointer: its characters would not travel to the worker.
#include <string>
#include <vector>

#include "mproc/pool.hpp"

std::string tag(const std::string& prefix, int x) { return prefix + std::to_string(x); }

int main() {
  mproc::Pool pool(1);
  std::vector<int> xs{1, 2, 3};
  std::vector<std::string> r = pool.map(mproc::bind_front(tag, "item "), xs);
  return static_cast<int>(r.size());
}
