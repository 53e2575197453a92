// A producer/consumer pipeline of Processes joined by Queues: a producer emits numbers, two
// workers square them, and the parent collects the results. A sentinel (-1) per worker ends it.
#include <iostream>
#include <vector>

#include <mproc/mproc.hpp>

int main() {
  mproc::Queue<int> tasks(64);
  mproc::Queue<long> results;
  constexpr int kWorkers = 2, kItems = 1000;

  mproc::Process producer([tasks]() mutable {
    for (int i = 1; i <= kItems; ++i) tasks.put(i);
    for (int w = 0; w < kWorkers; ++w) tasks.put(-1);
  });
  std::vector<mproc::Process> workers;
  for (int w = 0; w < kWorkers; ++w)
    workers.emplace_back([tasks, results]() mutable {
      for (int x; (x = tasks.get()) != -1;) results.put(static_cast<long>(x) * x);
    });

  producer.start();
  for (auto& w : workers) w.start();
  long sum = 0;
  for (int i = 0; i < kItems; ++i) sum += results.get();
  producer.join();
  for (auto& w : workers) w.join();
  std::cout << "sum of squares 1.." << kItems << " = " << sum << "\n";  // 333833500
  return sum == 333833500L ? 0 : 1;
}
