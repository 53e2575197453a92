// Python's concurrent.futures "ProcessPoolExecutor Example", ported:
//
//   PRIMES = [112272535095293, 112582705942171, 112272535095293, 115280095190773,
//             115797848077099, 1099726899285419]
//   def is_prime(n): ...
//   with concurrent.futures.ProcessPoolExecutor() as executor:
//       for number, prime in zip(PRIMES, executor.map(is_prime, PRIMES)):
//           print('%d is prime: %s' % (number, prime))
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "mproc/mproc.hpp"

namespace {

const std::vector<std::int64_t> kPrimes = {112272535095293, 112582705942171, 112272535095293,
                                           115280095190773, 115797848077099, 1099726899285419};

bool is_prime(std::int64_t n) {
  if (n < 2) return false;
  if (n == 2) return true;
  if (n % 2 == 0) return false;
  const auto sqrt_n = static_cast<std::int64_t>(std::floor(std::sqrt(static_cast<double>(n))));
  for (std::int64_t i = 3; i <= sqrt_n; i += 2)
    if (n % i == 0) return false;
  return true;
}

}  // namespace

int main() {
  mproc::ProcessPoolExecutor executor;
  std::vector<bool> prime = executor.map(is_prime, kPrimes);
  for (std::size_t i = 0; i < kPrimes.size(); ++i)
    std::printf("%lld is prime: %s\n", static_cast<long long>(kPrimes[i]), prime[i] ? "True" : "False");
  // The same with submit() and futures, as concurrent.futures code often reads.
  std::vector<mproc::Future<bool>> futures;
  for (auto n : kPrimes) futures.push_back(executor.submit(is_prime, n));
  auto [done, not_done] = mproc::wait(futures);
  executor.shutdown();
  return not_done.empty() && !futures[5].result() && futures[1].result() ? 0 : 1;  // as Python prints
}
