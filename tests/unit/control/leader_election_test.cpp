// The decision of one leader election try (control/leader_election.hpp), with the clocks given.
#include "control/leader_election.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

using namespace vane::control;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

lease_record held_by(const std::string& holder, std::int64_t transitions = 0) {
  return lease_record{holder, 15, "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:01.000000Z", transitions};
}

TEST(LeaderElection, NoLeaseIsCreatedWithNoTransitions) {
  lease_observation seen;
  auto plan = plan_lease(std::nullopt, seen, "me", steady::now(), "T", 15s);
  EXPECT_TRUE(plan.write);
  EXPECT_EQ(plan.record, (lease_record{"me", 15, "T", "T", 0}));
}

TEST(LeaderElection, AnotherHoldersRecordIsValidForItsDurationFromWhenItWasSeenChanging) {
  lease_observation seen;
  const auto t0 = steady::now();
  auto other = held_by("other", 4);
  EXPECT_FALSE(plan_lease(other, seen, "me", t0, "T", 15s).write);
  // The same record 14 s later (the holder stopped renewing): still valid, counted from t0 ...
  auto plan = plan_lease(other, seen, "me", t0 + 14s, "T", 15s);
  EXPECT_FALSE(plan.write);
  EXPECT_EQ(plan.held_by, "other");
  // ... a renewal seen at t0 + 14 s starts the count again, whatever its renewTime says ...
  other.renew_time = "2000-01-01T00:00:00.000000Z";
  EXPECT_FALSE(plan_lease(other, seen, "me", t0 + 14s, "T", 15s).write);
  EXPECT_FALSE(plan_lease(other, seen, "me", t0 + 28s, "T", 15s).write);
  // ... and once it has run out, the record is taken over: a transition.
  plan = plan_lease(other, seen, "me", t0 + 29s, "T", 10s);
  ASSERT_TRUE(plan.write);
  EXPECT_EQ(plan.record, (lease_record{"me", 10, "T", "T", 5}));
}

TEST(LeaderElection, ARenewalKeepsTheAcquireTimeAndTheTransitions) {
  lease_observation seen;
  auto mine = held_by("me", 2);
  auto plan = plan_lease(mine, seen, "me", steady::now(), "NOW", 15s);
  ASSERT_TRUE(plan.write);
  EXPECT_EQ(plan.record, (lease_record{"me", 15, mine.acquire_time, "NOW", 2}));
}

TEST(LeaderElection, AReleasedLeaseIsTakenAtOnce) {
  lease_observation seen;
  auto released = held_by("", 3);
  released.duration_seconds = 1;
  auto plan = plan_lease(released, seen, "me", steady::now(), "T", 15s);
  ASSERT_TRUE(plan.write);
  EXPECT_EQ(plan.record.transitions, 4);
}

TEST(LeaderElection, RecordsAreReadWithoutThrowing) {
  auto lease = boost::json::parse(R"({"spec":{"holderIdentity":7,"leaseDurationSeconds":"x","leaseTransitions":2}})");
  auto r = read_lease_record(lease.as_object());
  EXPECT_EQ(r.holder, "");
  EXPECT_EQ(r.duration_seconds, 0);
  EXPECT_EQ(r.transitions, 2);
  EXPECT_EQ(read_lease_record(boost::json::object{}), lease_record{});
  boost::json::object written{{"metadata", boost::json::object{{"name", "l"}}}};
  write_lease_record(written, lease_record{"me", 15, "A", "R", 1});
  EXPECT_EQ(
      boost::json::serialize(written.at("spec")),
      R"({"holderIdentity":"me","leaseDurationSeconds":15,"acquireTime":"A","renewTime":"R","leaseTransitions":1})");
  EXPECT_EQ(read_lease_record(written), (lease_record{"me", 15, "A", "R", 1}));
}

TEST(LeaderElection, MicroTimeAndIdentityAndOptions) {
  auto t = std::chrono::system_clock::time_point(std::chrono::microseconds(1764522254123456));
  EXPECT_EQ(micro_time(t), "2025-11-30T17:04:14.123456Z");
  auto a = leader_identity(), b = leader_identity();
  EXPECT_NE(a, b);
  EXPECT_NE(a.find('_'), std::string::npos);
  leader_election_options o;
  o.namespace_name = "ns";
  EXPECT_EQ(check_leader_election_options(o), "");
  o.renew_deadline = 15s;
  EXPECT_NE(check_leader_election_options(o), "");
  o.renew_deadline = 2s;
  EXPECT_NE(check_leader_election_options(o), "");  // not more than 1.2 times the retry period
}

}  // namespace
