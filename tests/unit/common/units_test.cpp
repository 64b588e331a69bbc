#include "common/units.hpp"

#include <gtest/gtest.h>

#include "common/address.hpp"

using namespace vane;
using namespace std::chrono_literals;

TEST(Units, Durations) {
  EXPECT_EQ(parse_duration("250ms"), duration(250));
  EXPECT_EQ(parse_duration("15s"), duration(15s));
  EXPECT_EQ(parse_duration("1m"), duration(60s));
  EXPECT_EQ(parse_duration("24h"), duration(24h));
  EXPECT_EQ(parse_duration("1.5s"), duration(1500));
  EXPECT_EQ(parse_duration("0s"), duration(0));
  EXPECT_EQ(parse_duration("876600h"), duration(876600h));  // 100 years of 365.25 days: the most
  // More would wrap around a steady_clock deadline (signed 64-bit nanoseconds) into the past.
  for (const char* bad : {"", "15", "s", "-1s", "1x", "1 s", "1.2.3s", "ms", "876601h", "2600000h"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(Units, Sizes) {
  EXPECT_EQ(parse_size("512"), 512u);
  EXPECT_EQ(parse_size("64KiB"), 64u * 1024);
  EXPECT_EQ(parse_size("16MiB"), 16u * 1024 * 1024);
  EXPECT_EQ(parse_size("2GiB"), 2ull << 30);
  for (const char* bad : {"", "KiB", "-1", "1KB", "1.5MiB", "99999999999999999999", "17179869184GiB"})
    EXPECT_FALSE(parse_size(bad)) << bad;
}

TEST(Units, FormatDuration) {
  EXPECT_EQ(format_duration(duration(250)), "250ms");
  EXPECT_EQ(format_duration(duration(15s)), "15s");
  EXPECT_EQ(format_duration(duration(2h)), "2h");
}

TEST(Address, HostPort) {
  auto a = parse_host_port("127.0.0.1:8080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  auto b = parse_host_port("[::1]:0");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->to_string(), "[::1]:0");
  EXPECT_TRUE(parse_host_port("podinfo.test:9898"));
  for (const char* bad : {"", "127.0.0.1", ":80", "host:", "host:65536", "host:x", "::1:80", "[::1]80"})
    EXPECT_FALSE(parse_host_port(bad)) << bad;
}
