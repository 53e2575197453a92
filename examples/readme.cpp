// The README's example: Python's Pool, line for line, in C++.
#include <mproc/mproc.hpp>

#include <iostream>
#include <numeric>
#include <vector>

int sqr(int x) { return x * x; }
int mul(int a, int b) { return a * b; }

int main() {
  mproc::Pool pool(mproc::cpu_count());  // with Pool(cpu_count()) as pool:

  std::cout << pool.apply(sqr, std::tuple{5}) << "\n";  // pool.apply(sqr, (5,))

  std::vector<int> xs(10);
  std::iota(xs.begin(), xs.end(), 0);
  for (int v : pool.map(sqr, xs)) std::cout << v << " ";  // pool.map(sqr, range(10))
  std::cout << "\n";

  std::vector<std::pair<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
  for (int v : pool.starmap(mul, pairs)) std::cout << v << " ";  // pool.starmap(mul, pairs)
  std::cout << "\n";

  auto r = pool.apply_async(sqr, std::tuple{7}, [](const int& v) { std::cout << "callback got " << v << "\n"; });
  r.wait();
  std::cout << "get() = " << r.get() << "\n";

  try {
    pool.apply([](int x) -> int { throw std::domain_error("no square root of " + std::to_string(x)); }, std::tuple{-4});
  } catch (const std::domain_error& e) {  // the worker's exception, same type, same message
    std::cout << "caught std::domain_error: " << e.what() << "\n";
  }
}
