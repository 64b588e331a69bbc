#include "common/regex.hpp"

#include <gtest/gtest.h>
#include <re2/re2.h>

using namespace vane;

TEST(Regex, CompilesAndMatchesWholeValues) {
  auto r = compile_regex("/v[0-9]+/.*");
  ASSERT_TRUE(r) << r.error;
  EXPECT_TRUE(r.error.empty());
  EXPECT_TRUE(RE2::FullMatch("/v2/users", *r.re));
  EXPECT_FALSE(RE2::FullMatch("/api/v2/users", *r.re));
}

TEST(Regex, RefusesABadPatternWithOneMessage) {
  auto r = compile_regex("(unclosed");
  EXPECT_FALSE(r);
  EXPECT_EQ(r.re, nullptr);
  EXPECT_EQ(r.error, "invalid RE2 regex: missing ): (unclosed");
}

TEST(Regex, TakesAViewThatIsNotNulTerminated) {
  std::string_view pattern = std::string_view("abc(").substr(0, 3);
  auto r = compile_regex(pattern);
  ASSERT_TRUE(r) << r.error;
  EXPECT_TRUE(RE2::FullMatch("abc", *r.re));
}
