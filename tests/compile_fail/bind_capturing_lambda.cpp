// expect: cannot be sent to a worker process
// bind_back binds values to a function a Pool can send: a capturing lambda still cannot be.
#include <vector>

#include "mproc/pool.hpp"

int main() {
  mproc::Pool pool(1);
  int k = 3;
  std::vector<int> xs{1, 2, 3};
  std::vector<int> r = pool.map(mproc::bind_back([k](int x, int y) { return x + y + k; }, 4), xs);
  return r[0];
}
