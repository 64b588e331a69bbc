// The mirror decision alone: exact shares, body and overload shedding, the shadow host.
#include "filters/mirror/mirror.hpp"

#include <gtest/gtest.h>

namespace vane {
namespace {

TEST(Mirror, ExactShareThenShedding) {
  const mirror_rule quarter{2500, 100};
  std::uint64_t seen = 0;
  int copies = 0;
  for (int i = 0; i < 100; ++i) copies += decide_mirror(quarter, seen, std::nullopt, false) == mirror_verdict::copy;
  EXPECT_EQ(copies, 25);
  EXPECT_EQ(seen, 100u);

  const mirror_rule all{10000, 100};
  EXPECT_EQ(decide_mirror(all, seen, 100, false), mirror_verdict::copy);  // at the cap: copied
  EXPECT_EQ(decide_mirror(all, seen, 101, false), mirror_verdict::shed_body);
  EXPECT_EQ(decide_mirror(all, seen, 10, true), mirror_verdict::shed_overload);
  const mirror_rule none{0, 100};
  EXPECT_EQ(decide_mirror(none, seen, 101, true), mirror_verdict::skip);  // outside the share: nothing counted as shed
}

TEST(Mirror, ShadowHostKeepsThePort) {
  EXPECT_EQ(shadow_host("api"), "api-shadow");
  EXPECT_EQ(shadow_host("api:8080"), "api-shadow:8080");
  EXPECT_EQ(shadow_host("[::1]:80"), "[::1]-shadow:80");
  EXPECT_EQ(shadow_host("[::1]"), "[::1]-shadow");
  EXPECT_EQ(shadow_host("10.0.0.1:9"), "10.0.0.1-shadow:9");
}

}  // namespace
}  // namespace vane
