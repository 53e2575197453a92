// A consumer of mproc, built against an installed mproc (find_package/) and against the source tree
// (add_subdirectory/): a Pool map whose result it checks, so a broken package fails at run time too.
#include <mproc/mproc.hpp>

#include <cstdio>
#include <numeric>
#include <vector>

int sqr(int x) { return x * x; }

int main() {
  std::vector<int> xs(100);
  std::iota(xs.begin(), xs.end(), 0);
  mproc::Pool pool(2);
  std::vector<int> squares = pool.map(sqr, xs);
  long sum = std::accumulate(squares.begin(), squares.end(), 0L);
  std::printf("mproc %s: sum of squares below 100 = %ld\n", mproc::version(), sum);
  return sum == 328350 ? 0 : 1;
}
