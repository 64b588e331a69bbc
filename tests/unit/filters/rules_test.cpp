// A/B rule matchers and the sticky hash, on a fake request view.
#include "filters/rules/rules.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "filters/split/split.hpp"
#include "tests/support/fake_request.hpp"

using namespace vane;
using vane::test::fake_request;

namespace {

string_matcher make(string_match_kind k, std::string v) {
  std::string error;
  auto m = string_matcher::make(k, std::move(v), error);
  EXPECT_TRUE(m) << error;
  return *m;
}

match_condition cond(match_source s, std::string name, string_match_kind k, std::string v) {
  return match_condition{s, std::move(name), make(k, std::move(v))};
}

}  // namespace

TEST(Rules, EveryMatcherKind) {
  using k = string_match_kind;
  EXPECT_TRUE(make(k::exact, "insider").matches("insider"));
  EXPECT_FALSE(make(k::exact, "insider").matches("insiders"));
  EXPECT_TRUE(make(k::prefix, "Mozilla/").matches("Mozilla/5.0"));
  EXPECT_TRUE(make(k::suffix, ".beta").matches("v2.beta"));
  EXPECT_TRUE(make(k::regex, ".*Firefox.*").matches("Mozilla/5.0 Firefox/120"));
  EXPECT_FALSE(make(k::regex, "Firefox").matches("Mozilla Firefox"));  // a full match, as Istio's
  EXPECT_TRUE(make(k::present, "").matches(""));
  EXPECT_FALSE(make(k::present, "").matches(std::nullopt));
  EXPECT_FALSE(make(k::exact, "").matches(std::nullopt));  // absent never equals
  std::string error;
  EXPECT_FALSE(string_matcher::make(k::regex, "(unclosed", error));
  EXPECT_NE(error.find("invalid RE2 regex"), std::string::npos);
}

TEST(Rules, FlaggersCookieRegexWorksUnchanged) {
  fake_request req;
  std::vector<match_alternative> rule{
      {{cond(match_source::header, "cookie", string_match_kind::regex, "^(.*?;)?(canary=always)(;.*)?$")}}};
  EXPECT_FALSE(rule_holds(rule, req));
  req.fields.insert({"cookie", "canary=always; theme=dark"});
  EXPECT_TRUE(rule_holds(rule, req));
  req.fields.clear();
  req.fields.insert({"cookie", "session=abc;canary=always"});
  EXPECT_TRUE(rule_holds(rule, req));
  // As with Istio: the regex wants the cookie first or right after a ';' (no space);
  // a `cookies: {canary: {exact: always}}` condition has no such catch.
  req.fields.clear();
  req.fields.insert({"cookie", "session=abc; canary=always"});
  EXPECT_FALSE(rule_holds(rule, req));
  req.fields.clear();
  req.fields.insert({"cookie", "canary=never"});
  EXPECT_FALSE(rule_holds(rule, req));
}

TEST(Rules, CookiesAndQueryParameters) {
  fake_request req;
  req.fields.insert({"cookie", "a=1; canary=always"});
  req.fields.insert({"cookie", "b=\"quoted\""});
  EXPECT_EQ(find_cookie(req, "canary"), "always");
  EXPECT_EQ(find_cookie(req, "b"), "quoted");
  EXPECT_EQ(find_cookie(req, "c"), std::nullopt);
  EXPECT_EQ(find_query_param("/p?variant=b&x", "variant"), "b");
  EXPECT_EQ(find_query_param("/p?variant=b&x", "x"), "");
  EXPECT_EQ(find_query_param("/p?variant=b&x", "y"), std::nullopt);
  EXPECT_EQ(find_query_param("/p", "variant"), std::nullopt);
  EXPECT_EQ(find_query_param("/p?a=1#variant=b", "variant"), std::nullopt);
}

TEST(Rules, AlternativesAreOrAndConditionsAreAnd) {
  fake_request req;
  std::vector<match_alternative> rule{
      {{cond(match_source::header, "x-canary", string_match_kind::exact, "insider"),
        cond(match_source::query, "variant", string_match_kind::exact, "b")}},
      {{cond(match_source::cookie, "canary", string_match_kind::exact, "always")}},
  };
  req.fields.insert({"x-canary", "insider"});
  EXPECT_FALSE(rule_holds(rule, req));  // the first alternative needs both
  req.target_ = "/?variant=b";
  EXPECT_TRUE(rule_holds(rule, req));
  req.fields.clear();
  req.target_ = "/";
  req.fields.insert({"cookie", "canary=always"});
  EXPECT_TRUE(rule_holds(rule, req));
  EXPECT_FALSE(rule_holds({}, req));
}

TEST(Sticky, FixedHashValues) {
  // Pinned: changing the hash would move every user of every deployed proxy.
  EXPECT_EQ(sticky_point(""), sticky_point(""));
  EXPECT_EQ(sticky_point("user-1"), 2563u);  // also computed by an independent Python version
  EXPECT_EQ(sticky_point("user-2"), 6638u);
  EXPECT_EQ(sticky_point("10.0.0.1"), 7831u);
}

TEST(Sticky, HundredThousandKeysStayAndOnlyMovePrimaryToCanary) {
  constexpr int keys = 100'000;
  std::vector<std::uint32_t> points(keys);
  for (int i = 0; i < keys; ++i) points[i] = sticky_point("user-" + std::to_string(i));
  std::vector<std::size_t> previous(keys, 0);  // canary weight 0: all on the primary
  int previous_canary = 0;
  for (std::uint32_t canary = 5; canary <= 100; canary += 5) {
    std::vector<std::uint32_t> weights{100 - canary, canary};
    int on_canary = 0;
    for (int i = 0; i < keys; ++i) {
      std::size_t pick = pick_by_point(weights, points[i]);
      ASSERT_EQ(pick, pick_by_point(weights, sticky_point("user-" + std::to_string(i))));  // same key, same cluster
      ASSERT_FALSE(previous[i] == 1 && pick == 0) << "key " << i << " moved back at canary " << canary;
      previous[i] = pick;
      on_canary += pick == 1;
    }
    ASSERT_GE(on_canary, previous_canary);
    // The share follows the weight (within 1 point for 100,000 keys).
    EXPECT_NEAR(on_canary * 100.0 / keys, canary, 1.0) << "canary weight " << canary;
    previous_canary = on_canary;
  }
}
