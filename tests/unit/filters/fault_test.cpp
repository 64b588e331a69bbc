// The fault decision alone: exact shares per worker, delay and abort counted apart.
#include "filters/fault/fault.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(Fault, SharesAreExactAndCountedApart) {
  vane::fault_config f;
  f.abort = vane::abort_fault{503, 500};     // 5%
  f.delay = vane::delay_fault{100ms, 2500};  // 25%
  vane::fault_counts counts{};
  int aborts = 0, delays = 0, both = 0;
  for (int i = 0; i < 200; ++i) {
    const auto out = vane::decide_fault(f, counts);
    aborts += out.abort.has_value();
    delays += out.delay.has_value();
    both += out.abort && out.delay;
    EXPECT_EQ(out.abort.value_or(503), 503U);
    EXPECT_EQ(out.delay.value_or(100ms), 100ms);
  }
  EXPECT_EQ(aborts, 10);
  EXPECT_EQ(delays, 50);
  EXPECT_EQ(counts[0], 200U);
  EXPECT_EQ(counts[1], 200U);
  EXPECT_LE(both, 10);
}

TEST(Fault, NothingConfiguredDoesNothing) {
  vane::fault_counts counts{};
  const auto out = vane::decide_fault({}, counts);
  EXPECT_FALSE(out.abort);
  EXPECT_FALSE(out.delay);
  vane::fault_config all;
  all.abort = vane::abort_fault{418, 10000};
  EXPECT_EQ(vane::decide_fault(all, counts).abort.value_or(0), 418U);
}
