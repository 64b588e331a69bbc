// The one checker per concept of a route's policy (proxy/route_policy.hpp):
// what each accepts and refuses, and the words, which the loader, the traffic
// PUT and the route table all show.
#include "proxy/route_policy.hpp"

#include <gtest/gtest.h>

using namespace vane;
using namespace vane::proxy;

namespace {

proxy_config two_clusters() {
  proxy_config c;
  c.clusters.push_back(cluster_config{.name = "primary"});
  c.clusters.push_back(cluster_config{.name = "canary"});
  return c;
}

std::vector<std::string> messages(const std::vector<policy_error>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.message);
  return out;
}

}  // namespace

TEST(RoutePolicy, SplitCompilesToEntriesAndClusterPositions) {
  auto config = two_clusters();
  std::vector<split_item> items{{"canary", 10}, {"primary", 90}};
  auto split = compile_split(items, config);
  EXPECT_TRUE(split.errors.empty());
  ASSERT_EQ(split.entries.size(), 2u);
  EXPECT_EQ(split.entries[0], (split_entry{"canary", 10}));
  EXPECT_EQ(split.entries[1], (split_entry{"primary", 90}));
  EXPECT_EQ(split.clusters, (std::vector<std::size_t>{1, 0}));
  // The same split as read already (the route table's input) compiles the same.
  auto again = compile_split(std::span<const split_entry>(split.entries), config);
  EXPECT_TRUE(again.errors.empty());
  EXPECT_EQ(again.clusters, split.clusters);
}

TEST(RoutePolicy, SplitRefusalsSayWhereAndWhy) {
  auto config = two_clusters();
  auto split = compile_split(std::vector<split_item>{{"ghost", 1}, {"primary", -1}, {"primary", 2}}, config);
  EXPECT_TRUE(split.clusters.empty());
  ASSERT_EQ(split.errors.size(), 3u);
  EXPECT_EQ(split.errors[0], (policy_error{0, "cluster", "split names unknown cluster 'ghost'"}));
  EXPECT_EQ(split.errors[1],
            (policy_error{1, "weight", "split: weight of 'primary' must be an integer from 0 to 1000000"}));
  EXPECT_EQ(split.errors[2], (policy_error{2, "cluster", "split names cluster 'primary' twice"}));
  EXPECT_EQ(split.entries.size(), 3u);  // every item, for the checks that follow (affinity's two clusters)

  EXPECT_EQ(messages(compile_split(std::vector<split_item>{}, config).errors),
            (std::vector<std::string>{"split must be a non-empty list of {cluster, weight}"}));
  EXPECT_EQ(messages(compile_split(std::vector<split_item>{{"primary", 0}, {"canary", 0}}, config).errors),
            (std::vector<std::string>{"route.split: the weights add up to 0; at least one must be positive"}));
  EXPECT_EQ(messages(compile_split(std::vector<split_item>{{"primary", 1'000'001}}, config).errors),
            (std::vector<std::string>{"split: weight of 'primary' must be an integer from 0 to 1000000"}));
  EXPECT_TRUE(compile_split(std::vector<split_item>{{"primary", 1'000'000}}, config).errors.empty());
}

TEST(RoutePolicy, SplitLeavesWhatTheReaderReportedAlone) {
  auto config = two_clusters();
  // A missing cluster or weight is the reader's error: nothing more is said of
  // it, and no sum is checked without every weight.
  std::vector<split_item> items{{std::nullopt, 1}, {"primary", std::nullopt}};
  EXPECT_TRUE(compile_split(items, config).errors.empty());
}

TEST(RoutePolicy, SessionAffinityChecks) {
  session_affinity_config ok{"vane-canary", "vane-primary", std::chrono::hours(1), "run-42"};
  EXPECT_TRUE(check_session_affinity(ok).empty());
  EXPECT_TRUE(check_session_affinity({"vane-canary", "", std::chrono::hours(1), ""}).empty());

  auto bad = ok;
  bad.cookie = "a b";
  bad.max_age = std::chrono::seconds(0);
  bad.value = "x;y";
  auto errors = check_session_affinity(bad);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0],
            (policy_error{policy_error::whole, "cookie", "session_affinity.cookie: 'a b' is not a valid cookie name"}));
  EXPECT_EQ(errors[1], (policy_error{policy_error::whole, "max_age", "session_affinity.max_age must be positive"}));
  EXPECT_EQ(errors[2].field, "value");

  auto same = ok;
  same.primary_cookie = same.cookie;
  EXPECT_EQ(messages(check_session_affinity(same)),
            (std::vector<std::string>{"session_affinity: cookie and primary_cookie must differ"}));
}

TEST(RoutePolicy, SessionAffinityCompilesOnlyWithAPrimaryAndACanary) {
  session_affinity_config a{"vane-canary", "", std::chrono::seconds(60), ""};
  std::vector<split_entry> split{{"primary", 90}, {"canary", 10}};
  std::string error;
  auto policy = compile_session_affinity("app", a, split, error);
  ASSERT_TRUE(policy) << error;
  // No value given: the one every replica derives from the route and the canary.
  EXPECT_EQ(policy->value, default_affinity_value("app", "canary"));
  EXPECT_EQ(policy->set_canary, "vane-canary=" + policy->value + "; Max-Age=60; Path=/");

  EXPECT_FALSE(compile_session_affinity("app", a, std::span(split).first(1), error));
  EXPECT_EQ(error, "session_affinity needs a split of at least two clusters (primary first, canary last)");

  a.cookie = "";
  EXPECT_FALSE(compile_session_affinity("app", a, split, error));
  EXPECT_EQ(error, "session_affinity.cookie: '' is not a valid cookie name");
}

TEST(RoutePolicy, Tokens) {
  EXPECT_TRUE(is_token("x-user-id"));
  EXPECT_TRUE(is_token("a!#$%&'*+-.^_`|~9"));
  EXPECT_FALSE(is_token(""));
  EXPECT_FALSE(is_token("a b"));
  EXPECT_FALSE(is_token("a:b"));
}
