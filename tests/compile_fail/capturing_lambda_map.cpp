// expect: cannot be sent to a worker process
// expect note: mproc::bind_back(f, values...)
#include <vector>

#include "mproc/pool.hpp"

int main() {
  mproc::Pool pool(1);
  int k = 3;
  std::vector<int> xs{1, 2, 3};
  std::vector<int> r = pool.map([k](int x) { return x + k; }, xs);
  return r[0];
}
