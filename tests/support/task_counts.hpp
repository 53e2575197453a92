// task_counts.hpp: TaskCounts — counters that a test or benchmark and its pool's workers
// (threads or forked processes) all see, in an anonymous shared mapping made on first use, so
// before the pool forks; and the tasks that count through them: counted() (runs), block()
// (started, then holds its worker until release is set), sleep_counted() (started, finished).
// One copy for tests/ and bench/ (bench_futures includes it).
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <thread>

namespace mproc::test {

struct TaskCounts {
  std::atomic<long> runs;     // counted() calls
  std::atomic<int> started;   // block() and sleep_counted() calls that began
  std::atomic<int> finished;  // sleep_counted() calls that ended
  std::atomic<int> release;   // block() returns once set
};

// The one TaskCounts of this program; call it first before the pool forks.
inline TaskCounts& task_counts() {
  static TaskCounts* c = [] {
    void* p = ::mmap(nullptr, sizeof(TaskCounts), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    return new (p) TaskCounts{};
  }();
  return *c;
}

// Every counter zero; before the pool forks.
inline TaskCounts& fresh_task_counts() {
  TaskCounts& c = task_counts();
  c.runs = 0;
  c.started = 0;
  c.finished = 0;
  c.release = 0;
  return c;
}

inline int counted(int x) {
  task_counts().runs.fetch_add(1);
  return x;
}

inline int block(int x) {
  task_counts().started.fetch_add(1);
  while (!task_counts().release.load()) std::this_thread::sleep_for(std::chrono::microseconds(200));
  return x;
}

inline int sleep_counted(int ms) {
  task_counts().started.fetch_add(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  task_counts().finished.fetch_add(1);
  return ms;
}

inline void await_started(int n) {
  while (task_counts().started.load() < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

}  // namespace mproc::test
