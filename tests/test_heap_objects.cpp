// Shared objects in the shared heap (mproc/detail/heap_object.hpp): each kind made after a
// process Pool is used by its tasks, passed as a task argument (a handle to the same state
// crosses); made after a Process starts, reaches it through a queue; freed when the last process
// drops it; forged or stale handles are refused, never followed; a Lock whose holder dies is
// taken over.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "heap_support.hpp"
#include "leak_check.hpp"
#include "mproc/mproc.hpp"

using namespace std::chrono_literals;
using mproc::detail::ObjectHandle;

namespace {

bool decode_lock(ObjectHandle h) {
  mproc::detail::Writer w;
  mproc::detail::encode(w, h);
  mproc::detail::Reader r(w.bytes());
  (void)mproc::detail::decode<mproc::Lock>(r);
  return true;
}

template <class T>
T decode_handle_as(const ObjectHandle& h) {
  mproc::detail::Writer w;
  mproc::detail::encode(w, h);
  mproc::detail::Reader r(w.bytes());
  return mproc::detail::decode<T>(r);
}

template <class T>
ObjectHandle handle_of(const T& x) {
  mproc::detail::Writer w;
  mproc::detail::encode(w, x);
  mproc::detail::Reader r(w.bytes());
  return mproc::detail::decode<ObjectHandle>(r);  // the first handle a value crosses as
}

void add_one(mproc::Lock lock, mproc::Value<int> v) {
  std::scoped_lock hold(lock);
  int seen = v.value();
  std::this_thread::yield();  // widen the window a lost update would need
  v.value() = seen + 1;
}

void add_one_own_lock(mproc::Value<long> v) {
  std::scoped_lock hold(v.get_lock());
  v.value() += 1;
}

void put_item(mproc::Queue<std::string> q, int i) { q.put(std::to_string(i)); }

std::size_t put_big(mproc::Queue<std::string> q, std::size_t bytes) {
  q.put(std::string(bytes, 'b'));
  return bytes;
}

void set_event(mproc::Event e) { e.set(); }

unsigned meet(mproc::Barrier b) { return b.wait(10s); }

void release_twice(mproc::Semaphore s) {
  s.release();
  s.release();
}

bool try_rlock(mproc::RLock l, int wait_ms) {
  if (!l.acquire(std::chrono::milliseconds(wait_ms))) return false;
  bool again = l.acquire(false);  // re-entrant
  l.release();
  if (again) l.release();
  return again;
}

void notify_after_setting(mproc::Condition c, mproc::Value<int> flag) {
  std::scoped_lock hold(c);
  flag.value() = 1;
  c.notify();
}

int take_and_done(mproc::JoinableQueue<int> q) {
  int x = q.get(5s);
  q.task_done();
  return x;
}

void put_simple(mproc::SimpleQueue<int> q, int x) { q.put(x); }

// Writes i into element i of the Array it was given: the parent's memory.
void write_at(mproc::Array<int> a, std::size_t i) { a[i] = static_cast<int>(i) * 3; }

int array_sum(mproc::Array<int> a) { return std::accumulate(a.begin(), a.end(), 0); }

std::uint32_t refs_seen(mproc::Lock l) { return mproc::detail::heap_object_refs(handle_of(l)); }

[[noreturn]] void die_holding(mproc::Lock l) {
  l.acquire();
  ::kill(::getpid(), SIGKILL);
  for (;;) pause();
}

}  // namespace

// --- each kind made after the pool, used by its tasks -----------------------------------------

TEST(HeapObjects, LockMadeAfterThePoolGuardsAValueOverAThousandTasks) {
  mproc::Pool pool(2);
  mproc::Lock lock;
  mproc::Value<int> v(0);
  std::vector<std::tuple<mproc::Lock, mproc::Value<int>>> items(1000, {lock, v});
  pool.starmap(add_one, items, 10);
  EXPECT_EQ(v.get(), 1000);
}

TEST(HeapObjects, ValueMadeAfterThePoolWithItsOwnLock) {
  mproc::Pool pool(2);
  mproc::Value<long> v(0);
  std::vector<mproc::AsyncResult<mproc::None>> rs;
  for (int i = 0; i < 200; ++i) rs.push_back(pool.apply_async(add_one_own_lock, std::tuple{v}));
  for (auto& r : rs) (void)r.get(30s);
  EXPECT_EQ(v.get(), 200);
}

TEST(HeapObjects, QueueMadeAfterThePoolTasksPutTheParentGets) {
  mproc::Pool pool(2);
  mproc::Queue<std::string> q;
  std::vector<std::tuple<mproc::Queue<std::string>, int>> items;
  for (int i = 0; i < 100; ++i) items.emplace_back(q, i);
  pool.starmap(put_item, items);
  std::set<std::string> got;
  for (int i = 0; i < 100; ++i) got.insert(q.get(5s));
  EXPECT_EQ(got.size(), 100u);
  EXPECT_TRUE(got.count("0") && got.count("99"));
  EXPECT_THROW((void)q.get_nowait(), mproc::Empty);
}

// An item past the ring goes through a payload block of the heap, which the worker allocates.
TEST(HeapObjects, QueueMadeAfterThePoolCarriesBigItemsFromATask) {
  mproc::Pool pool(2);
  mproc::Queue<std::string> q;
  const std::size_t big = std::size_t{3} << 20;
  EXPECT_EQ(pool.apply(put_big, std::tuple{q, big}), big);
  EXPECT_EQ(q.get(5s), std::string(big, 'b'));
}

TEST(HeapObjects, EventMadeAfterThePoolSetByATask) {
  mproc::Pool pool(2);
  mproc::Event e;
  auto r = pool.apply_async(set_event, std::tuple{e});
  EXPECT_TRUE(e.wait(10s));
  (void)r.get(10s);
}

TEST(HeapObjects, BarrierMadeAfterThePoolMeetsATaskAndTheParent) {
  mproc::Pool pool(2);
  mproc::Barrier b(2);
  auto r = pool.apply_async(meet, std::tuple{b});
  unsigned mine = b.wait(10s);
  EXPECT_EQ(mine + r.get(10s), 1u);  // indices 0 and 1
}

TEST(HeapObjects, SemaphoreMadeAfterThePoolReleasedByATask) {
  mproc::Pool pool(2);
  mproc::Semaphore s(0);
  pool.apply(release_twice, std::tuple{s});
  EXPECT_TRUE(s.acquire(5s));
  EXPECT_TRUE(s.acquire(5s));
  EXPECT_FALSE(s.acquire(false));
}

TEST(HeapObjects, RLockMadeAfterThePoolIsTheSameLockInATask) {
  mproc::Pool pool(2);
  mproc::RLock l;
  l.acquire();
  EXPECT_FALSE(pool.apply(try_rlock, std::tuple{l, 50}));  // held here: the task cannot take it
  l.release();
  EXPECT_TRUE(pool.apply(try_rlock, std::tuple{l, 5000}));
}

TEST(HeapObjects, ConditionMadeAfterThePoolNotifiedByATask) {
  mproc::Pool pool(2);
  mproc::Condition c;
  mproc::Value<int> flag(0);
  std::scoped_lock hold(c);
  auto r = pool.apply_async(notify_after_setting, std::tuple{c, flag});
  EXPECT_TRUE(c.wait_for([&] { return flag.value() == 1; }, 10s));
  (void)r.get(10s);
}

TEST(HeapObjects, JoinableQueueMadeAfterThePoolJoinsWhenTasksAreDone) {
  mproc::Pool pool(2);
  mproc::JoinableQueue<int> q;
  for (int i = 0; i < 10; ++i) q.put(i);
  std::vector<mproc::JoinableQueue<int>> items(10, q);
  auto got = pool.map(take_and_done, items);
  EXPECT_TRUE(q.join(5s));
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(HeapObjects, SimpleQueueMadeAfterThePool) {
  mproc::Pool pool(2);
  mproc::SimpleQueue<int> q;
  pool.apply(put_simple, std::tuple{q, 42});
  EXPECT_EQ(q.get(), 42);
  EXPECT_TRUE(q.empty());
}

TEST(HeapObjects, ArrayMadeAfterThePoolIsTheSameMemoryInTasks) {
  mproc::Pool pool(2);
  mproc::Array<int> a(100);
  std::vector<std::tuple<mproc::Array<int>, std::size_t>> items;
  for (std::size_t i = 0; i < a.size(); ++i) items.emplace_back(a, i);
  pool.starmap(write_at, items);
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], static_cast<int>(i) * 3);
  EXPECT_EQ(pool.apply(array_sum, std::tuple{a}), 3 * 99 * 100 / 2);
}

// --- Process -----------------------------------------------------------------------------------

TEST(HeapObjects, ProcessChildGetsObjectsMadeAfterItStartedThroughAQueue) {
  mproc::Queue<mproc::Value<int>> values;
  mproc::Queue<mproc::Event> events;
  mproc::Process child(
      [](mproc::Queue<mproc::Value<int>> vq, mproc::Queue<mproc::Event> eq) {
        mproc::Value<int> v = vq.get(10s);
        for (int i = 0; i < 5; ++i) {
          std::scoped_lock hold(v.get_lock());
          v.value() += 1;
        }
        eq.get(10s).set();
      },
      values, events);
  child.start();
  mproc::Value<int> v(10);  // both made after start()
  mproc::Event done;
  values.put(v);
  events.put(done);
  EXPECT_TRUE(done.wait(10s));
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_EQ(v.get(), 15);
}

// start() drops the parent's copies of the arguments, but the objects stay for the child until it
// is reaped, even when the caller kept none.
TEST(HeapObjects, ProcessKeepsItsArgumentsObjectsUntilTheChildIsReaped) {
  mproc::Queue<int> out;
  const std::size_t before = mproc::heap_stats().in_use;
  mproc::Process child(
      [](mproc::Value<int> v, mproc::Queue<int> q) {
        std::this_thread::sleep_for(100ms);
        v.value() += 1;
        q.put(v.get());
      },
      mproc::Value<int>(6), out);
  child.start();
  EXPECT_GT(mproc::heap_stats().in_use, before);
  EXPECT_EQ(out.get(10s), 7);
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_EQ(mproc::heap_stats().in_use, before);
}

// --- lifetime ----------------------------------------------------------------------------------

TEST(HeapObjects, AReceivedHandleIsAReferenceTheLastDropFrees) {
  mproc::Pool pool(1);
  const std::size_t before = mproc::heap_stats().in_use;
  {
    mproc::Lock l;
    EXPECT_GT(mproc::heap_stats().in_use, before);
    EXPECT_EQ(mproc::detail::heap_object_refs(handle_of(l)), 1u);
    EXPECT_EQ(pool.apply(refs_seen, std::tuple{l}), 2u);  // the parent's and the worker's
  }
  EXPECT_TRUE(mproc::test::heap_back_to(before));
}

// The parent drops its Event first; the child, which received it, holds it on and frees it.
TEST(HeapObjects, AnObjectIsFreedByWhicheverProcessDropsItLast) {
  mproc::Queue<mproc::Event> q;
  mproc::Event got, go;
  const std::size_t base = mproc::heap_stats().in_use;
  mproc::Process child(
      [](mproc::Queue<mproc::Event> eq, mproc::Event got_it, mproc::Event go_on) {
        mproc::Event e = eq.get(10s);
        got_it.set();
        go_on.wait(10s);
        e.set();
      },  // e is dropped here: the last reference
      q, got, go);
  child.start();
  {
    mproc::Event e;
    q.put(e);
    ASSERT_TRUE(got.wait(10s));
  }
  EXPECT_GT(mproc::heap_stats().in_use, base);  // the child holds it
  go.set();
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_EQ(mproc::heap_stats().in_use, base);
}

TEST(HeapObjects, CopiesInOneProcessShareOneReference) {
  mproc::Event e;
  std::vector<mproc::Event> copies(10, e);
  EXPECT_EQ(mproc::detail::heap_object_refs(handle_of(e)), 1u);
}

// --- refused handles -----------------------------------------------------------------------------

TEST(HeapObjects, AForgedHandleIsRefusedNotFollowed) {
  mproc::Lock real;
  const ObjectHandle h = handle_of(real);
  ObjectHandle outside = h;
  outside.address = 0x1000;
  EXPECT_THROW(decode_lock(outside), mproc::SerializationError);
  ObjectHandle misaligned = h;
  misaligned.address += 8;
  EXPECT_THROW(decode_lock(misaligned), mproc::SerializationError);
  ObjectHandle wrong_nonce = h;
  wrong_nonce.nonce ^= 1;
  EXPECT_THROW(decode_lock(wrong_nonce), mproc::SerializationError);
  ObjectHandle zero{};
  EXPECT_THROW(decode_lock(zero), mproc::SerializationError);
  EXPECT_TRUE(decode_lock(h));
  try {
    decode_lock(wrong_nonce);
  } catch (const mproc::SerializationError& e) {
    EXPECT_NE(std::string(e.what()).find("mproc::Lock"), std::string::npos) << e.what();
  }
}

TEST(HeapObjects, AHandleOfAnotherKindOrTypeIsRefused) {
  mproc::Lock lock;
  mproc::Value<int> v(1);
  EXPECT_THROW((void)decode_handle_as<mproc::Event>(handle_of(lock)), mproc::SerializationError);
  EXPECT_THROW((void)decode_handle_as<mproc::RLock>(handle_of(lock)), mproc::SerializationError);
  mproc::detail::Writer w;
  mproc::detail::encode(w, v);
  mproc::detail::Reader r(w.bytes());
  EXPECT_THROW((void)mproc::detail::decode<mproc::Value<double>>(r), mproc::SerializationError);
  mproc::Queue<int> q;
  mproc::detail::Writer qw;
  mproc::detail::encode(qw, q);
  mproc::detail::Reader qr(qw.bytes());
  EXPECT_THROW((void)mproc::detail::decode<mproc::Queue<std::string>>(qr), mproc::SerializationError);
}

TEST(HeapObjects, AHandleToAFreedObjectIsRefused) {
  ObjectHandle stale;
  {
    mproc::Event e;
    stale = handle_of(e);
  }
  EXPECT_THROW((void)decode_handle_as<mproc::Event>(stale), mproc::SerializationError);
}

// A stale handle whose block a new object of the same kind may now hold (the heap hands freed
// blocks out again): refused, and the new object's count untouched.
TEST(HeapObjects, AHandleToAFreedObjectIsRefusedAfterItsBlockIsReused) {
  ObjectHandle stale;
  {
    mproc::Event e;
    stale = handle_of(e);
  }
  mproc::Event reused;
  EXPECT_THROW((void)decode_handle_as<mproc::Event>(stale), mproc::SerializationError);
  EXPECT_EQ(mproc::detail::heap_object_refs(handle_of(reused)), 1u);
  auto again = decode_handle_as<mproc::Event>(handle_of(reused));
  again.set();
  EXPECT_TRUE(reused.is_set());
}

// Random handles near a live object: every one refused, none followed (a crash would end the test).
TEST(HeapObjects, FuzzedHandlesAreAllRefused) {
  mproc::Lock real;
  const ObjectHandle h = handle_of(real);
  std::mt19937_64 rng(16);
  for (int i = 0; i < 20000; ++i) {
    ObjectHandle f = h;
    switch (i % 4) {
      case 0:
        f.address = h.address + (rng() % (std::uint64_t{4} << 20)) - (std::uint64_t{2} << 20);
        f.address &= ~std::uint64_t{63};
        break;
      case 1:
        f.address = rng();
        break;
      case 2:
        f.nonce = rng();
        break;
      default:
        f.kind = static_cast<std::uint32_t>(rng() % 16);
        break;
    }
    if (f.address == h.address && f.nonce == h.nonce && f.kind == h.kind) continue;
    ASSERT_THROW(decode_lock(f), mproc::SerializationError) << i;
  }
}

// A forged handle sent to a task is refused in the worker; the task fails, the pool goes on.
TEST(HeapObjects, AForgedHandleSentToATaskFailsThatTask) {
  mproc::Pool pool(1);
  mproc::Lock real;
  ObjectHandle forged = handle_of(real);
  forged.nonce ^= 0x5a5a;
  EXPECT_THROW((void)pool.apply(decode_lock, std::tuple{forged}), mproc::SerializationError);
  EXPECT_TRUE(pool.apply(decode_lock, std::tuple{handle_of(real)}));
}

// --- robustness ----------------------------------------------------------------------------------

TEST(HeapObjects, ALockMadeAfterThePoolWhoseHolderDiesIsTakenOver) {
  mproc::Pool pool(1);
  mproc::Lock l;
  EXPECT_THROW((void)pool.apply(die_holding, std::tuple{l}), mproc::WorkerLost);
  ASSERT_TRUE(l.acquire(5s));
  EXPECT_TRUE(l.previous_owner_died());
  l.release();
  EXPECT_TRUE(pool.apply(decode_lock, std::tuple{handle_of(l)}));  // the replacement uses it too
}

// --- SharedMemory: its name crosses; the receiver attaches ---------------------------------------

namespace {
int write_block(const mproc::SharedMemory& block) {
  block.buf()[0] = std::byte{7};
  return static_cast<int>(block.size());
}
}  // namespace

TEST(HeapObjects, SharedMemoryAsATaskArgumentIsTheSameBlock) {
  mproc::Pool pool(1);
  mproc::SharedMemory block = mproc::SharedMemory::create(4096);
  EXPECT_GE(pool.apply(write_block, std::make_tuple(mproc::SharedMemory::attach(block.name()))), 4096);
  EXPECT_EQ(block.buf()[0], std::byte{7});
  block.unlink();
  mproc::detail::Writer w;
  mproc::detail::encode(w, std::string("psm_no_such_block_here"));
  mproc::detail::Reader r(w.bytes());
  EXPECT_THROW((void)mproc::detail::decode<mproc::SharedMemory>(r), std::system_error);
}
