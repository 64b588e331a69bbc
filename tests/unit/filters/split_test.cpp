#include "filters/split/split.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace vane;

namespace {
std::vector<int> run_smooth(const std::vector<std::uint32_t>& weights, int picks, int* longest_run = nullptr) {
  std::vector<std::int64_t> current(weights.size(), 0);
  std::vector<int> counts(weights.size(), 0);
  int run = 0, longest = 0;
  std::size_t last = weights.size();
  for (int i = 0; i < picks; ++i) {
    auto p = pick_smooth(weights, current);
    ++counts[p];
    run = p == last ? run + 1 : 1;
    last = p;
    if (p == weights.size() - 1) longest = std::max(longest, run);
  }
  if (longest_run) *longest_run = longest;
  return counts;
}
}  // namespace

TEST(Split, SmoothIsExactOverEveryWindow) {
  auto counts = run_smooth({90, 10}, 10'000);
  EXPECT_EQ(counts[0], 9000);
  EXPECT_EQ(counts[1], 1000);
  counts = run_smooth({5, 3, 2}, 1000);
  EXPECT_EQ(counts, (std::vector<int>{500, 300, 200}));
}

TEST(Split, SmoothInterleavesEvenly) {
  // The canary at 10% never gets two picks in a row, and the primary never more than 9.
  int canary_run = 0;
  run_smooth({90, 10}, 1000, &canary_run);
  EXPECT_EQ(canary_run, 1);
  std::vector<std::int64_t> current(2, 0);
  int longest_primary = 0, run = 0;
  for (int i = 0; i < 1000; ++i) {
    run = pick_smooth(std::vector<std::uint32_t>{90, 10}, current) == 0 ? run + 1 : 0;
    longest_primary = std::max(longest_primary, run);
  }
  EXPECT_LE(longest_primary, 9);
}

TEST(Split, SmoothSkipsZeroWeights) {
  auto counts = run_smooth({0, 7, 0}, 100);
  EXPECT_EQ(counts, (std::vector<int>{0, 100, 0}));
  counts = run_smooth({100, 0}, 100);
  EXPECT_EQ(counts, (std::vector<int>{100, 0}));
}

TEST(Split, PointRangesFollowWeights) {
  std::vector<std::uint32_t> w{90, 10};
  int canary = 0;
  for (std::uint32_t p = 0; p < split_points; ++p) canary += pick_by_point(w, p) == 1;
  EXPECT_EQ(canary, 1000);
  EXPECT_EQ(pick_by_point(w, 0), 0u);
  EXPECT_EQ(pick_by_point(w, 8999), 0u);
  EXPECT_EQ(pick_by_point(w, 9000), 1u);
  EXPECT_EQ(pick_by_point(w, 9999), 1u);
  EXPECT_EQ(pick_by_point(std::vector<std::uint32_t>{0, 5, 0}, 0), 1u);
  EXPECT_EQ(pick_by_point(std::vector<std::uint32_t>{0, 5, 0}, 9999), 1u);
}

TEST(Split, GrowingCanaryOnlyTakesFromPrimary) {
  // Every point that is on the canary at weight w stays there at every larger weight.
  for (std::uint32_t w = 0; w < 100; ++w) {
    std::vector<std::uint32_t> before{100 - w, w}, after{100 - (w + 1), w + 1};
    for (std::uint32_t p = 0; p < split_points; ++p)
      if (pick_by_point(before, p) == 1) {
        ASSERT_EQ(pick_by_point(after, p), 1u) << "w=" << w << " p=" << p;
      }
  }
}
