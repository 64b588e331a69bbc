// The process's guard: every worker's window counts, the first attempt that
// brings their sum to the rule trips it (once), a reset starts every window over.
#include "proxy/guard_state.hpp"

#include <gtest/gtest.h>

namespace vane::proxy {
namespace {

using namespace std::chrono_literals;
const guard_window::time_point t0 = guard_window::time_point{} + 1000s;
const guard_rule rule{5000, 10, 1000ms};  // 50% of at least 10

TEST(GuardState, TheWorkersWindowsAreSummed) {
  guard_state g("app", "canary", 3);
  guard_totals seen;
  // 9 failures spread over three workers: not enough requests yet.
  for (int i = 0; i < 9; ++i) EXPECT_FALSE(g.record(static_cast<std::size_t>(i % 3), rule, t0 + i * 1ms, true, seen));
  EXPECT_FALSE(g.tripped());
  EXPECT_TRUE(g.record(2, rule, t0 + 9ms, true, seen));  // the tenth, on any worker, trips it
  EXPECT_TRUE(g.tripped());
  EXPECT_EQ(seen.requests, 10u);
  EXPECT_EQ(seen.failures, 10u);
  EXPECT_FALSE(g.record(0, rule, t0 + 10ms, true, seen));  // once
  const auto v = g.read();
  EXPECT_TRUE(v.tripped);
  EXPECT_EQ(v.requests, 10u);
  EXPECT_EQ(v.error_per_10k, 10000u);
  EXPECT_GT(v.since_unix_ms, 0);
  EXPECT_FALSE(g.record(7, rule, t0, true, seen));  // a worker the state does not know: ignored
}

TEST(GuardState, SuccessesElsewhereKeepItBelowTheShare) {
  guard_state g("app", "canary", 2);
  guard_totals seen;
  for (int i = 0; i < 30; ++i) {
    EXPECT_FALSE(g.record(0, rule, t0 + i * 1ms, true, seen)) << i;   // worker 0 sees only failures...
    EXPECT_FALSE(g.record(1, rule, t0 + i * 1ms, false, seen)) << i;  // ...worker 1 as many successes
    EXPECT_FALSE(g.record(1, rule, t0 + i * 1ms, false, seen)) << i;
  }
  EXPECT_FALSE(g.tripped());  // 33% together
}

TEST(GuardState, AResetStartsEveryWindowOver) {
  guard_state g("app", "canary", 2);
  guard_totals seen;
  for (int i = 0; i < 10; ++i) g.record(static_cast<std::size_t>(i % 2), rule, t0 + i * 1ms, true, seen);
  ASSERT_TRUE(g.tripped());
  const auto epoch = g.epoch();
  g.reset();
  EXPECT_FALSE(g.tripped());
  EXPECT_NE(g.epoch(), epoch);
  EXPECT_FALSE(g.read().tripped);
  // Worker 1's old failures do not count any more: nine new ones on worker 0 are not enough.
  for (int i = 0; i < 9; ++i) EXPECT_FALSE(g.record(0, rule, t0 + 20ms + i * 1ms, true, seen)) << i;
  EXPECT_EQ(seen.requests, 9u);
  EXPECT_TRUE(g.record(1, rule, t0 + 30ms, true, seen));
}

TEST(GuardState, TheRegistryHandsOutOneStatePerRouteAndCluster) {
  guard_registry r(2);
  auto a = r.get("app", "canary");
  EXPECT_EQ(r.get("app", "canary"), a);
  EXPECT_NE(r.get("app", "primary"), a);
  EXPECT_NE(r.get("other", "canary"), a);
  guard_totals seen;
  for (int i = 0; i < 10; ++i) a->record(0, rule, t0 + i * 1ms, true, seen);
  ASSERT_TRUE(a->tripped());
  r.reset("other");
  EXPECT_TRUE(a->tripped());
  r.reset("app");
  EXPECT_FALSE(a->tripped());
}

}  // namespace
}  // namespace vane::proxy
