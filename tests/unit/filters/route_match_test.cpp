#include "filters/route_match/route_match.hpp"

#include <gtest/gtest.h>

using namespace vane;

TEST(RouteMatch, HostWithoutPort) {
  EXPECT_EQ(host_without_port("example.com:8080"), "example.com");
  EXPECT_EQ(host_without_port("example.com"), "example.com");
  EXPECT_EQ(host_without_port("[::1]:80"), "[::1]");
  EXPECT_EQ(path_of_target("/a/b?x=1"), "/a/b");
  EXPECT_EQ(path_of_target("/a"), "/a");
}

TEST(RouteMatch, ExactHostIgnoresCaseAndPort) {
  host_matcher m("podinfo.local");
  EXPECT_TRUE(m.matches("podinfo.local"));
  EXPECT_TRUE(m.matches("PodInfo.Local:8080"));
  EXPECT_FALSE(m.matches("podinfo.local.evil"));
  EXPECT_FALSE(m.matches("x.podinfo.local"));
  EXPECT_FALSE(m.matches(""));
}

TEST(RouteMatch, SuffixHost) {
  host_matcher m("*.example.com");
  EXPECT_TRUE(m.matches("a.example.com"));
  EXPECT_TRUE(m.matches("a.b.EXAMPLE.com:443"));
  EXPECT_FALSE(m.matches("example.com"));
  EXPECT_FALSE(m.matches("aexample.com"));
  EXPECT_TRUE(host_matcher("").matches("anything"));
  EXPECT_TRUE(host_matcher("*").matches("anything"));
}

TEST(RouteMatch, Paths) {
  EXPECT_TRUE(path_matcher().matches("/x"));
  auto prefix = path_matcher::prefix("/api");
  EXPECT_TRUE(prefix.matches("/api"));
  EXPECT_TRUE(prefix.matches("/api/v1"));
  EXPECT_FALSE(prefix.matches("/ap"));
  auto exact = path_matcher::exact("/healthz");
  EXPECT_TRUE(exact.matches("/healthz"));
  EXPECT_FALSE(exact.matches("/healthz/"));
  auto re = path_matcher::regex("/users/[0-9]+");
  ASSERT_TRUE(re.valid());
  EXPECT_TRUE(re.matches("/users/42"));
  EXPECT_FALSE(re.matches("/users/42/x"));  // full match, not search
  EXPECT_FALSE(re.matches("/x/users/42"));
  auto bad = path_matcher::regex("(unclosed");
  EXPECT_FALSE(bad.valid());
  EXPECT_FALSE(bad.error().empty());
  EXPECT_FALSE(bad.matches("(unclosed"));
}
