// Tests of SharedMemory, Value and Array across processes, and of the cleanup of named blocks.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>

#include <gtest/gtest.h>

#include "fork_helper.hpp"
#include "leak_check.hpp"
#include "mproc/shared_memory.hpp"

using namespace std::chrono_literals;
using mproc::test::exited_ok;
using mproc::test::fork_child;

namespace {
bool shm_exists(const std::string& name) {
  struct stat st {};
  return ::stat(("/dev/shm/" + name).c_str(), &st) == 0;
}

}  // namespace

TEST(shared_SharedMemory, TrackerUnlinksWhatACrashedCreatorLeft) {
  // A child creates a block and dies without unlinking it. It is the first creator of its
  // process tree (this test comes first in the file, before this process creates any block), so
  // it starts its own tracker, which unlinks the block once the child has gone.
  mproc::Array<char> name(64);
  pid_t pid = fork_child([&] {
    pid_t inner = fork_child([&] {
      auto shm = mproc::SharedMemory::create(64);
      std::memcpy(name.begin(), shm.name().c_str(), shm.name().size() + 1);
      ::raise(SIGKILL);
    });
    mproc::test::wait_child(inner);
  });
  EXPECT_TRUE(exited_ok(pid));
  std::string leaked(name.begin());
  ASSERT_FALSE(leaked.empty());
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (shm_exists(leaked) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(shm_exists(leaked));
}

// The tracker has room for any number of blocks: a child that leaves 5000 behind (more than
// the 4096 its table once held, silently dropping the rest) has every one unlinked once it ends.
// Like the test above, the child starts its own tracker when this test runs alone.
TEST(shared_SharedMemory, TrackerUnlinksThousandsOfBlocks) {
  const std::string prefix = "mproc_test_many_" + std::to_string(::getpid()) + "_";
  constexpr int kBlocks = 5000;
  pid_t pid = fork_child([&] {
    for (int i = 0; i < kBlocks; ++i) (void)mproc::SharedMemory::create(1, prefix + std::to_string(i));
  });
  EXPECT_TRUE(exited_ok(pid));
  auto left = [&] {
    int n = 0;
    for (const auto& name : mproc::test::shm_entries()) n += name.rfind(prefix, 0) == 0;
    return n;
  };
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (left() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(left(), 0) << "blocks the tracker did not unlink";
  for (int i = 0; i < kBlocks; ++i) ::shm_unlink(("/" + prefix + std::to_string(i)).c_str());
}

TEST(shared_Value, ChildWritesSeenByParent) {
  mproc::Value<double> v(3.625);
  EXPECT_EQ(v.get(), 3.625);
  pid_t pid = fork_child([&] { v.set(2.5); });
  EXPECT_TRUE(exited_ok(pid));
  EXPECT_EQ(v.get(), 2.5);
}

TEST(shared_Array, ChildWritesSeenByParent) {
  mproc::Array<int> a(10);
  mproc::Array<int> b{1, 2, 3};
  EXPECT_EQ(a.size(), 10u);
  EXPECT_EQ(b[2], 3);
  pid_t pid = fork_child([&] {
    std::scoped_lock hold(a.get_lock());
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int>(i * i);
  });
  EXPECT_TRUE(exited_ok(pid));
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a.span()[i], static_cast<int>(i * i));
}

TEST(shared_SharedMemory, ChildWritesSeenByParent) {
  auto shm = mproc::SharedMemory::create(4096);
  EXPECT_EQ(shm.size(), 4096u);
  EXPECT_NE(shm.name().front(), '/');
  EXPECT_GE(shm.name().size(), 4u + 16u);  // psm_ + >= 64 random bits in hex
  struct stat st {};
  ASSERT_EQ(::stat(("/dev/shm/" + shm.name()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  pid_t pid = fork_child([name = shm.name()] {
    auto seen = mproc::SharedMemory::attach(name);
    std::memcpy(seen.data(), "hello", 6);
  });
  EXPECT_TRUE(exited_ok(pid));
  EXPECT_STREQ(reinterpret_cast<const char*>(shm.data()), "hello");
  shm.close();
  shm.unlink();
  EXPECT_FALSE(shm_exists(shm.name()));
}

TEST(shared_SharedMemory, Errors) {
  EXPECT_THROW((void)mproc::SharedMemory::create(0), std::invalid_argument);
  try {
    (void)mproc::SharedMemory::attach("psm_no_such_block_here_0123456789");
    FAIL();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
  }
  auto shm = mproc::SharedMemory::create(100);
  try {
    (void)mproc::SharedMemory::create(100, shm.name());
    FAIL();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::file_exists);
  }
  auto named = mproc::SharedMemory::create(10, "/mproc_test_" + shm.name());
  EXPECT_EQ(named.name(), "mproc_test_" + shm.name());
  named.unlink();
  shm.unlink();
}

// A process that only attached to a block and unlinks it starts no tracker (whose pipe it would
// then keep open). Run in a child that has none, when this test runs alone, as under ctest.
TEST(shared_SharedMemory, UnlinkAfterAttachStartsNoTracker) {
  std::string name = "mproc_test_attach_" + std::to_string(::getpid());
  int fd = ::shm_open(("/" + name).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 4096), 0);
  ::close(fd);
  pid_t pid = fork_child([&] {
    const auto before = mproc::test::open_fds();
    {
      auto shm = mproc::SharedMemory::attach(name);
      shm.close();
      shm.unlink();
    }
    if (mproc::test::open_fds() != before)
      throw std::runtime_error("unlink() left a descriptor open: a tracker's pipe");
  });
  EXPECT_TRUE(exited_ok(pid));
  EXPECT_FALSE(shm_exists(name));
  if (shm_exists(name)) ::shm_unlink(("/" + name).c_str());
}
