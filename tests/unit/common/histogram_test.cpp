#include "common/histogram.hpp"

#include <gtest/gtest.h>

#include <random>

using vane::log_linear_histogram;
using H = log_linear_histogram;

TEST(Histogram, EveryValueFallsInsideItsBucketAndBucketsAreNarrow) {
  // Exhaustive below 2^16, then sampled up to the top of the range.
  auto check = [](std::uint64_t v) {
    std::size_t i = H::index_of(v);
    ASSERT_LT(i, H::bucket_count);
    ASSERT_LE(H::lower(i), v) << v;
    ASSERT_LT(v, H::upper(i)) << v;
    if (v >= H::sub_count) {
      // Relative width of the bucket: at most 1/64 of its lower edge (< 2%).
      ASSERT_LE(static_cast<double>(H::upper(i) - H::lower(i)) / static_cast<double>(H::lower(i)), 1.0 / 64) << v;
    }
  };
  for (std::uint64_t v = 0; v < (1u << 16); ++v) check(v);
  std::mt19937_64 rng(42);
  for (int k = 0; k < 100'000; ++k) check(rng() % (std::uint64_t{1} << H::max_bits));
  // Buckets tile the range with no gap.
  for (std::size_t i = 0; i + 1 < H::bucket_count; ++i) ASSERT_EQ(H::upper(i), H::lower(i + 1)) << i;
  EXPECT_EQ(H::index_of(std::uint64_t{1} << 40), H::bucket_count - 1);  // clamped
}

TEST(Histogram, CountsSumsAndMerge) {
  H a, b;
  for (std::uint64_t v : {1u, 10u, 100u, 1000u}) a.record(v);
  b.record(1000);
  a.merge(b);
  EXPECT_EQ(a.count(), 5u);
  EXPECT_EQ(a.sum(), 2111u);
  EXPECT_EQ(a.bucket(H::index_of(1000)), 2u);
  EXPECT_EQ(a.count_below(64), 2u);  // 1 and 10
  EXPECT_EQ(a.count_below(2000), 5u);
}

TEST(Histogram, QuantilesAreWithinTwoPercent) {
  H h;
  for (std::uint64_t v = 1; v <= 100'000; ++v) h.record(v);  // uniform 1..100000 µs
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    double expected = q * 100'000;
    EXPECT_NEAR(h.quantile(q), expected, expected * 0.02) << q;
  }
  H empty;
  EXPECT_EQ(empty.quantile(0.99), 0);
  H one;
  one.record(5000);
  EXPECT_GE(one.quantile(0.99), 5000);
  EXPECT_LT(one.quantile(0.99), H::upper(H::index_of(5000)));
}
