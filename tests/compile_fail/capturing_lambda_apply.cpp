// expect: cannot be sent to a worker process
// A capturing lambda exists only in this process: a Pool refuses it.
#include <tuple>

#include "mproc/pool.hpp"

int main() {
  mproc::Pool pool(1);
  int k = 3;
  int r = pool.apply([k](int x) { return x + k; }, std::tuple{1});
  return r;
}
