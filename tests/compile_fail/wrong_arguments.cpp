// expect: cannot be called with these arguments
#include <tuple>

#include "mproc/thread_pool.hpp"

int add(int a, int b) { return a + b; }

int main() {
  mproc::ThreadPool pool(1);
  auto r = pool.apply_async(add, std::tuple{1, 2, 3});
  return r.get();
}
