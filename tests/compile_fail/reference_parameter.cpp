// expect: takes a parameter by non-const reference
// A task works on its own copy of each argument: a result cannot come back through a reference.
#include <tuple>

#include "mproc/pool.hpp"

void increment(int& x) { ++x; }

int main() {
  mproc::Pool pool(1);
  int x = 1;
  pool.apply(increment, std::tuple{x});
  return x;
}
