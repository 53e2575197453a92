// The main() of every test executable: runs GoogleTest with a listener that fails any test that
// leaves a child process or a new /dev/shm entry behind (after a short grace period, since a
// terminated child may take a moment to be reaped).
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "leak_check.hpp"

namespace mproc::test {

std::set<std::string> new_shm_entries(const std::set<std::string>& before) {
  std::set<std::string> added;
  for (auto& name : shm_entries())
    if (!before.count(name)) added.insert(name);
  return added;
}

namespace {

class LeakCheck : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo&) override { shm_before_ = shm_entries(); }

  void OnTestEnd(const ::testing::TestInfo&) override {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    std::set<pid_t> children;
    std::set<std::string> new_shm;
    for (;;) {
      children = children_of();
      new_shm = new_shm_entries(shm_before_);
      if ((children.empty() && new_shm.empty()) || std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::ostringstream msg;
    for (pid_t pid : children) msg << " pid " << pid;
    EXPECT_TRUE(children.empty()) << "the test left child processes behind:" << msg.str();
    msg.str("");
    for (const auto& name : new_shm) msg << " " << name;
    EXPECT_TRUE(new_shm.empty()) << "the test left /dev/shm entries behind:" << msg.str();
    // Reap what is left so that one leaky test does not fail the next ones too.
    for (pid_t pid : children) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }

  std::set<std::string> shm_before_;
};

}  // namespace
}  // namespace mproc::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new mproc::test::LeakCheck);
  return RUN_ALL_TESTS();
}
