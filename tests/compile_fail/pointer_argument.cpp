// expect: a pointer
// A pointer's target stays in the parent: an argument cannot be a pointer.
#include <tuple>

#include "mproc/pool.hpp"

int deref(const int* p) { return *p; }

int main() {
  mproc::Pool pool(1);
  int x = 1;
  return pool.apply(deref, std::tuple{&x});
}
