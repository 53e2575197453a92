// Tests of how mproc waits: Backoff's phases under a WaitPolicy, and the deadline and timeout
// helpers every wait shares (mproc/detail/wait.hpp, src/backoff.hpp).
#include <chrono>

#include <gtest/gtest.h>

#include "backoff.hpp"
#include "mproc/detail/wait.hpp"

using namespace std::chrono_literals;
using mproc::detail::Backoff;
using mproc::detail::Clock;
using mproc::detail::Deadline;
using mproc::detail::Nanos;
using mproc::detail::OptNanos;
using mproc::detail::WaitPolicy;

namespace {

// Calls pause() until it returns false; returns how many calls returned true.
unsigned long pauses_until_false(Backoff& backoff) {
  unsigned long n = 0;
  while (backoff.pause()) ++n;
  return n;
}

}  // namespace

TEST(wait_Backoff, SpinsItsWholeTimeThenSaysSleep) {
  const WaitPolicy policy{200us, 2ms, 1ms};
  const auto start = Clock::now();
  Backoff backoff(policy);
  pauses_until_false(backoff);
  EXPECT_GE(Clock::now() - start, policy.spin);
  EXPECT_FALSE(backoff.pause()) << "once over, the spin stays over";
}

TEST(wait_Backoff, RestartSpinsAgain) {
  const WaitPolicy policy{0us, 1ms, 1ms};
  Backoff backoff(policy);
  pauses_until_false(backoff);
  const auto restarted = Clock::now();
  backoff.restart();
  EXPECT_TRUE(backoff.pause());
  pauses_until_false(backoff);
  EXPECT_GE(Clock::now() - restarted, policy.spin);
}

TEST(wait_Backoff, StopsAtTheDeadlineWithinCheckEveryLooks) {
  const WaitPolicy policy{1h, 1h, 1h, false, 8};
  Backoff backoff(policy, Clock::now() - 1ns);
  EXPECT_LE(pauses_until_false(backoff), policy.check_every);
}

TEST(wait_Backoff, DeadlineEndsASpinLongBeforeItsTime) {
  const WaitPolicy policy{1h, 1h, 1h};
  const auto start = Clock::now();
  Backoff backoff(policy, start + 2ms);
  pauses_until_false(backoff);
  EXPECT_GE(Clock::now() - start, 2ms);  // without the deadline, an hour: the test's timeout fails it
}

TEST(wait_Backoff, NapsPastItsSpinInsteadOfStopping) {
  const WaitPolicy policy{0us, 0us, 2ms, true, 1};
  Backoff backoff(policy);
  const auto start = Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(backoff.pause());
  EXPECT_GE(Clock::now() - start, 3 * policy.sleep);
}

TEST(wait_Backoff, NamedPoliciesAreConsistent) {
  using namespace mproc::detail::waits;
  for (const WaitPolicy& p :
       {kJob, kThreadIdleWorker, kThreadCaller, kThreadHelper, kProcessCaller, kProcessResultThread, kProcessWorker,
        kProcessMessage, kProcessRingSpace, kQueue, kMpiComm, kMpiRank}) {
    EXPECT_LE(p.alone, p.spin);
    EXPECT_GT(p.sleep, Nanos::zero());
    EXPECT_NE(p.check_every, 0u);
    EXPECT_EQ(p.check_every & (p.check_every - 1), 0u) << "check_every must be a power of two";
  }
}

TEST(wait_Deadline, NoneNeverPasses) {
  const Deadline none = mproc::detail::deadline_after(OptNanos{});
  EXPECT_FALSE(none.has_value());
  EXPECT_FALSE(mproc::detail::passed(none));
  EXPECT_FALSE(mproc::detail::time_left(none).has_value());
}

TEST(wait_Deadline, TimeLeftShrinksToZeroAndStaysThere) {
  const Deadline soon = mproc::detail::deadline_after(OptNanos{1h});
  const OptNanos left = mproc::detail::time_left(soon);
  ASSERT_TRUE(left.has_value());
  EXPECT_GT(*left, 59min);
  EXPECT_LE(*left, 1h);
  EXPECT_FALSE(mproc::detail::passed(soon));

  const Deadline gone = Clock::now() - 1s;
  EXPECT_TRUE(mproc::detail::passed(gone));
  EXPECT_EQ(mproc::detail::time_left(gone), Nanos::zero());
}

TEST(wait_Timeout, ToNanosKeepsTheDurationAndMakesANegativeOneZero) {
  EXPECT_EQ(mproc::detail::to_nanos(1500ms), Nanos(1'500'000'000));
  EXPECT_EQ(mproc::detail::to_nanos(std::chrono::duration<double>(0.25)), Nanos(250'000'000));
  EXPECT_EQ(mproc::detail::to_nanos(-5s), Nanos::zero());
}
