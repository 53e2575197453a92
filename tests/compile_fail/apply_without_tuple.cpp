// expect: pass the arguments as a tuple
#include "mproc/thread_pool.hpp"

int sqr(int x) { return x * x; }

int main() {
  mproc::ThreadPool pool(1);
  return pool.apply(sqr, 5);
}
