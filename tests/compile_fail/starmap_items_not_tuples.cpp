// expect: make the items tuples
#include <vector>

#include "mproc/thread_pool.hpp"

int add(int a, int b) { return a + b; }

int main() {
  mproc::ThreadPool pool(1);
  std::vector<int> xs{1, 2, 3};
  std::vector<int> r = pool.starmap(add, xs);
  return r[0];
}
