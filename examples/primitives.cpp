// primitives.cpp: one short example per shared primitive, as docs/primitives.md shows them; run
// by ctest (example.primitives), each checking what it claims. Every shared object here is made
// after the pool or Process that uses it, and passed to it as an argument.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "mproc/mproc.hpp"

using namespace std::chrono_literals;

namespace {

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "primitives example failed: %s\n", what);
  std::exit(1);
}

// --- Lock and Value: the lock idiom ---
void deposit(mproc::Value<long> balance, long amount) {
  std::scoped_lock hold(balance.get_lock());  // += is read, add, write: hold the lock around it
  balance.value() += amount;
}

void lock_and_value() {
  mproc::Pool pool(2);
  mproc::Value<long> balance(0);  // made after the pool: fine
  std::vector<std::tuple<mproc::Value<long>, long>> deposits(1000, {balance, 1});
  pool.starmap(deposit, deposits);
  check(balance.get() == 1000, "Value: 1000 deposits");
}

// --- Lock on its own ---
void log_line(mproc::Lock lock, mproc::Array<int> counts, int i) {
  std::scoped_lock hold(lock);
  counts[0] += 1;
  counts[1] = std::max(counts[1], i);
}

void lock() {
  mproc::Pool pool(2);
  mproc::Lock lock;
  mproc::Array<int> counts(2);
  for (int i = 0; i < 100; ++i) pool.apply(log_line, std::tuple{lock, counts, i});
  check(counts[0] == 100 && counts[1] == 99, "Lock: 100 updates");
  check(lock.acquire(false) && !lock.acquire(10ms), "Lock: a timed acquire by the holder gives false");
  lock.release();
}

// --- RLock ---
void rlock() {
  mproc::RLock r;
  r.acquire();
  r.acquire();  // its holder may take it again...
  r.release();
  r.release();  // ...and releases it as often
  check(!r.locked(), "RLock: released");
}

// --- Semaphore ---
int use_slot(mproc::Semaphore slots, mproc::Value<int> busy) {
  std::scoped_lock hold(slots);  // at most 2 tasks inside at once
  int now = 0;
  {
    std::scoped_lock count(busy.get_lock());
    now = ++busy.value();
  }
  std::scoped_lock count(busy.get_lock());
  --busy.value();
  return now;
}

void semaphore() {
  mproc::Pool pool(3);
  mproc::Semaphore slots(2);
  mproc::Value<int> busy(0);
  std::vector<std::tuple<mproc::Semaphore, mproc::Value<int>>> items(30, {slots, busy});
  for (int seen : pool.starmap(use_slot, items)) check(seen <= 2, "Semaphore: at most 2 inside");
}

// --- Event ---
void wait_for_start(mproc::Event start, mproc::Value<int> ran) {
  if (start.wait(10s)) ran.set(1);
}

void event() {
  mproc::Pool pool(2);
  mproc::Event start;
  mproc::Value<int> ran(0);
  auto r = pool.apply_async(wait_for_start, std::tuple{start, ran});
  start.set();
  (void)r.get();
  check(ran.get() == 1, "Event: the task saw it set");
}

// --- Condition ---
void produce(mproc::Condition ready, mproc::Value<int> item) {
  std::scoped_lock hold(ready);
  item.value() = 42;
  ready.notify();
}

void condition() {
  mproc::Pool pool(2);
  mproc::Condition ready;
  mproc::Value<int> item(0);
  std::scoped_lock hold(ready);  // wait() must be called holding the condition's lock
  auto r = pool.apply_async(produce, std::tuple{ready, item});
  check(ready.wait_for([&] { return item.value() == 42; }, 10s), "Condition: notified");
  (void)r.get();
}

// --- Barrier: and what its timeout throws ---
unsigned meet(mproc::Barrier b) { return b.wait(10s); }

void barrier() {
  mproc::Pool pool(2);
  mproc::Barrier b(2);
  auto r = pool.apply_async(meet, std::tuple{b});
  unsigned mine = b.wait(10s);  // the task and the parent meet; indices 0 and 1
  check(mine + r.get() == 1, "Barrier: one round");

  mproc::Barrier alone(2);
  try {
    alone.wait(50ms);  // nobody comes: the timeout breaks the barrier
    check(false, "Barrier: timeout");
  } catch (const mproc::BrokenBarrierError&) {
  }
  check(alone.broken(), "Barrier: broken after the timeout");
  alone.reset();  // usable again
  check(!alone.broken(), "Barrier: reset");
}

// --- Array: read in place by map ---
int square(int x) { return x * x; }

void array() {
  mproc::Pool pool(2);
  mproc::Array<int> a(1000);  // made after the pool: still read in place
  std::iota(a.begin(), a.end(), 0);
  auto before = mproc::heap_stats().maps_copied;
  std::vector<int> squares = pool.map(square, a);
  check(squares[999] == 999 * 999, "Array: map");
  check(mproc::heap_stats().maps_copied == before, "Array: read in place, not copied");
}

// --- Queue, SimpleQueue, JoinableQueue ---
void send_words(mproc::Queue<std::string> q, int n) {
  for (int i = 0; i < n; ++i) q.put("word " + std::to_string(i));
}

int work_off(mproc::JoinableQueue<int> jobs) {
  int x = jobs.get(10s);
  jobs.task_done();
  return x;
}

void queues() {
  mproc::Pool pool(2);
  mproc::Queue<std::string> q;
  pool.apply(send_words, std::tuple{q, 3});
  check(q.get(1s) == "word 0" && q.get(1s) == "word 1" && q.get(1s) == "word 2", "Queue: in order");
  try {
    (void)q.get_nowait();
    check(false, "Queue: Empty");
  } catch (const mproc::Empty&) {
  }

  mproc::JoinableQueue<int> jobs;
  for (int i = 0; i < 4; ++i) jobs.put(i);
  pool.map(work_off, std::vector<mproc::JoinableQueue<int>>(4, jobs));
  check(jobs.join(10s), "JoinableQueue: every item done");

  mproc::SimpleQueue<int> simple;
  simple.put(7);
  check(simple.get() == 7 && simple.empty(), "SimpleQueue");
}

// --- Pipe: a Connection is move-only; a Process gets its own copy of an end ---
void writer(mproc::Connection<int>& w) {
  for (int i = 1; i <= 3; ++i) w.send(i);
}

void pipe() {
  auto [r, w] = mproc::Pipe<int>(false);  // r only receives, w only sends
  mproc::Process p(writer, w);            // an lvalue end: the child gets a copy
  p.start();
  w.close();  // the parent's copy: now recv() ends with EOFError once the child ends
  int sum = 0;
  try {
    for (;;) sum += r.recv();
  } catch (const mproc::EOFError&) {
  }
  p.join();
  check(sum == 6, "Pipe: three messages");
  mproc::Connection<int> moved = std::move(r);  // move-only: no copies in one process
  check(!moved.closed() && r.closed(), "Pipe: moved");
}

// --- Process: how arguments pass ---
void child_main(std::string greeting, mproc::Queue<std::string> out) { out.put(greeting + ", world"); }

void process() {
  mproc::Queue<std::string> out;
  mproc::Process p(child_main, std::string("hello"), out);  // both copied into the Process
  p.start();                                                // and reach the child through fork
  check(out.get(10s) == "hello, world", "Process: arguments");
  p.join();
  check(p.exitcode() == 0, "Process: exit code 0");
}

// --- SharedMemory: a named block; another process attaches by name ---
void fill_block(std::string name) {
  mproc::SharedMemory block = mproc::SharedMemory::attach(name);
  block.buf()[0] = std::byte{99};
}

void shared_memory() {
  mproc::SharedMemory block = mproc::SharedMemory::create(4096);
  mproc::Process p(fill_block, block.name());  // its name crosses; the child attaches
  p.start();
  p.join();
  check(block.buf()[0] == std::byte{99}, "SharedMemory: written by the child");
  block.unlink();
}

}  // namespace

int main() {
  lock_and_value();
  lock();
  rlock();
  semaphore();
  event();
  condition();
  barrier();
  array();
  queues();
  pipe();
  process();
  shared_memory();
  std::puts("every primitive example passed");
  return 0;
}
