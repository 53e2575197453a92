// expect: the function's result is a pointer
#include <vector>

#include "mproc/pool.hpp"

const char* name_of(int) { return "x"; }

int main() {
  mproc::Pool pool(1);
  std::vector<int> xs{1, 2};
  std::vector<const char*> r = pool.map(name_of, xs);
  return static_cast<int>(r.size());
}
