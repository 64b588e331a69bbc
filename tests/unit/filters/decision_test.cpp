// A route's traffic decision composed (rules, affinity, sticky hash, split),
// exact shares, and the retry policy: every case on a fake request.
#include "filters/decision/decision.hpp"

#include <gtest/gtest.h>

#include <map>

#include "filters/split/split.hpp"
#include "tests/support/fake_request.hpp"

using namespace vane;
using vane::test::fake_request;

namespace {

route_decision two_way(std::uint32_t primary, std::uint32_t canary) {
  route_decision d;
  d.weights = {primary, canary};
  return d;
}

std::vector<std::string> set(const affinity_cookies& c) {
  std::vector<std::string> out;
  for (const auto* s : c)
    if (s) out.push_back(*s);
  return out;
}

}  // namespace

TEST(Decision, ExactSharesHitExactlyTheirShareInEveryHundred) {
  for (std::uint32_t per_10k : {0u, 500u, 1000u, 3333u, 5000u, 10000u}) {
    std::uint64_t n = 0;
    int hits = 0;
    for (int i = 0; i < 10000; ++i) hits += exact_share_hit(n, per_10k);
    EXPECT_EQ(hits, static_cast<int>(per_10k)) << per_10k;
  }
  std::uint64_t n = 0;
  std::vector<bool> first;
  for (int i = 0; i < 4; ++i) first.push_back(exact_share_hit(n, 5000));
  EXPECT_EQ(first, (std::vector<bool>{false, true, false, true}));  // interleaved, not bunched
}

TEST(Decision, RulesComeFirstThenTheSplit) {
  route_decision d = two_way(1, 0);
  std::string error;
  d.rules.push_back(ab_rule{{{{match_condition{match_source::header, "x-canary",
                                               *string_matcher::make(string_match_kind::exact, "1", error)}}}},
                            1});
  std::vector<std::int64_t> swrr(2, 0);
  affinity_cookies cookies{};
  fake_request req;
  EXPECT_EQ(d.pick(req, swrr, cookies), 0u);
  req.fields.insert({"x-canary", "1"});
  EXPECT_EQ(d.pick(req, swrr, cookies), 1u);  // a rule may send where the split gives nothing
}

TEST(Decision, HashWithoutItsKeyFallsBackToTheEvenPick) {
  route_decision d = two_way(1, 1);
  d.hash = hash_kind::cookie;
  d.hash_name = "session";
  std::vector<std::int64_t> swrr(2, 0);
  affinity_cookies cookies{};
  fake_request req;
  std::vector<std::size_t> picks;
  for (int i = 0; i < 4; ++i) picks.push_back(d.pick(req, swrr, cookies));
  EXPECT_EQ(picks, (std::vector<std::size_t>{0, 1, 0, 1}));
  req.fields.insert({"cookie", "session=abc"});
  std::size_t first = d.pick(req, swrr, cookies);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(d.pick(req, swrr, cookies), first);
  EXPECT_EQ(first, pick_by_point(d.weights, sticky_point("abc")));
  d.hash = hash_kind::source_ip;
  EXPECT_EQ(d.pick(req, swrr, cookies), pick_by_point(d.weights, sticky_point("10.0.0.1")));
}

TEST(Decision, SessionAffinityPinsSetsAndExpires) {
  route_decision d = two_way(1, 1);
  d.affinity = affinity_policy::make("c", "p", "run1", 60);
  std::vector<std::int64_t> swrr(2, 0);
  fake_request fresh;
  affinity_cookies cookies{};
  EXPECT_EQ(d.pick(fresh, swrr, cookies), 0u);  // the split's first pick: primary, pinned
  EXPECT_EQ(set(cookies), (std::vector<std::string>{"p=run1; Max-Age=60; Path=/"}));
  cookies = {};
  EXPECT_EQ(d.pick(fresh, swrr, cookies), 1u);
  EXPECT_EQ(set(cookies), (std::vector<std::string>{"c=run1; Max-Age=60; Path=/"}));

  fake_request pinned;
  pinned.fields.insert({"cookie", "c=run1"});
  for (int i = 0; i < 4; ++i) {
    cookies = {};
    EXPECT_EQ(d.pick(pinned, swrr, cookies), 1u);
    EXPECT_EQ(set(cookies), std::vector<std::string>{});
  }
  // An earlier run's cookie: expired, and a new pick made (which may set the new one).
  fake_request stale;
  stale.fields.insert({"cookie", "c=run0; p=run0"});
  cookies = {};
  std::size_t t = d.pick(stale, swrr, cookies);
  if (t == 1)
    EXPECT_EQ(set(cookies), (std::vector<std::string>{"c=run1; Max-Age=60; Path=/", "p=; Max-Age=0; Path=/"}));
  else
    EXPECT_EQ(set(cookies), (std::vector<std::string>{"p=run1; Max-Age=60; Path=/", "c=; Max-Age=0; Path=/"}));
  // The canary out: both expired, primary for everyone, nothing set.
  d.weights = {1, 0};
  fake_request both;
  both.fields.insert({"cookie", "c=run1; p=run1"});
  cookies = {};
  EXPECT_EQ(d.pick(both, swrr, cookies), 0u);
  EXPECT_EQ(set(cookies), (std::vector<std::string>{"c=; Max-Age=0; Path=/", "p=; Max-Age=0; Path=/"}));
}

// A tripped guard's decision: the target gets nothing, whatever would have picked it.
TEST(Decision, WithoutATargetNothingPicksIt) {
  route_decision d;
  d.weights = {80, 20};
  ab_rule to_canary;
  to_canary.any.push_back(match_alternative{});  // always holds
  to_canary.target = 1;
  d.rules.push_back(std::move(to_canary));
  d.affinity = affinity_policy::make("c", "p", "run1", 60);
  d.hash = hash_kind::header;
  d.hash_name = "x-user";
  const route_decision out = d.without(1);
  EXPECT_EQ(out.weights, (std::vector<std::uint32_t>{80, 0}));
  EXPECT_TRUE(out.rules.empty());
  std::vector<std::int64_t> swrr(2, 0);
  fake_request pinned;
  pinned.fields.insert({"cookie", "c=run1"});
  affinity_cookies cookies{};
  EXPECT_EQ(out.pick(pinned, swrr, cookies), 0u);
  EXPECT_EQ(set(cookies), (std::vector<std::string>{"c=; Max-Age=0; Path=/"}));  // the canary is out: expired
  for (int i = 0; i < 50; ++i) {
    fake_request user;
    user.fields.insert({"x-user", "u" + std::to_string(i)});
    cookies = {};
    EXPECT_EQ(out.pick(user, swrr, cookies), 0u) << i;
  }
  // The original is unchanged; a guarded primary turns affinity off; a canary with all the weight leaves it to the
  // primary.
  EXPECT_EQ(d.weights, (std::vector<std::uint32_t>{80, 20}));
  EXPECT_FALSE(d.without(0).affinity);
  EXPECT_EQ(two_way(0, 100).without(1).weights, (std::vector<std::uint32_t>{1, 0}));
  EXPECT_EQ(two_way(0, 100).without(7).weights, (std::vector<std::uint32_t>{0, 100}));
}
