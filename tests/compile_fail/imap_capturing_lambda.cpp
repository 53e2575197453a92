// expect: cannot be sent to a worker process
#include <ranges>

#include "mproc/pool.hpp"

int main() {
  mproc::Pool pool(1);
  int k = 3;
  int sum = 0;
  for (int x : pool.imap([k](int y) { return y + k; }, std::views::iota(0, 10))) sum += x;
  return sum;
}
