// The guard's window alone, on a fake clock: what it counts, when it trips,
// and that old failures leave the window.
#include "filters/guard/guard.hpp"

#include <gtest/gtest.h>

namespace vane {
namespace {

using namespace std::chrono_literals;
const guard_window::time_point t0 = guard_window::time_point{} + 1000s;

TEST(Guard, TripsAtTheShareOnceEnoughRequestsWereSeen) {
  guard_window w({2000, 20, 1000ms});  // 20% of at least 20
  // 19 failures in a row: not enough requests yet.
  for (int i = 0; i < 19; ++i) EXPECT_FALSE(w.record(t0 + i * 1ms, true)) << i;
  EXPECT_FALSE(w.tripped());
  EXPECT_TRUE(w.record(t0 + 19ms, true));  // the 20th trips it
  EXPECT_TRUE(w.tripped());
  EXPECT_FALSE(w.record(t0 + 20ms, true));  // once
  const auto t = w.at(t0 + 20ms);
  EXPECT_EQ(t.requests, 21u);
  EXPECT_EQ(t.failures, 21u);
  EXPECT_EQ(t.error_per_10k(), 10000u);
  w.reset();
  EXPECT_FALSE(w.tripped());
  EXPECT_EQ(w.at(t0 + 20ms).requests, 0u);
}

TEST(Guard, BelowTheShareNeverTrips) {
  guard_window w({2000, 20, 1000ms});
  // 1 failure in 6 (16.7%) over many windows.
  for (int i = 0; i < 600; ++i) EXPECT_FALSE(w.record(t0 + i * 10ms, i % 6 == 5)) << i;
  EXPECT_FALSE(w.tripped());
  // Exactly 20%: trips.
  guard_window exact({2000, 10, 1000ms});
  bool tripped = false;
  for (int i = 0; i < 10; ++i) tripped = exact.record(t0 + i * 1ms, i < 2) || tripped;
  EXPECT_TRUE(tripped);
}

TEST(Guard, FailuresOlderThanTheWindowAreForgotten) {
  guard_window w({5000, 10, 1000ms});                        // 50% of at least 10
  for (int i = 0; i < 9; ++i) w.record(t0 + i * 1ms, true);  // 9 failures, too few to trip
  EXPECT_EQ(w.at(t0 + 900ms).failures, 9u);
  EXPECT_EQ(w.at(t0 + 1100ms).failures, 0u);  // their bucket left the window
  // Successes a second later: the old failures no longer count.
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(w.record(t0 + 1100ms + i * 1ms, false));
  const auto t = w.at(t0 + 1120ms);
  EXPECT_EQ(t.requests, 20u);
  EXPECT_EQ(t.failures, 0u);
  // A bucket reused on a later turn of the window starts over.
  EXPECT_FALSE(w.record(t0 + 3000ms, true));
  EXPECT_EQ(w.at(t0 + 3000ms).requests, 1u);
}

TEST(Guard, FailuresAre5xxAndTheProxysOwnFailures) {
  EXPECT_TRUE(guard_failure(500));
  EXPECT_TRUE(guard_failure(502));  // connect failure, reset
  EXPECT_TRUE(guard_failure(504));  // timeout
  EXPECT_FALSE(guard_failure(404));
  EXPECT_FALSE(guard_failure(200));
  EXPECT_FALSE(guard_failure(499));
}

}  // namespace
}  // namespace vane
