#include "proxy/cpus.hpp"

#include <gtest/gtest.h>
#include <sched.h>

using vane::proxy::cpus_of_cfs;
using vane::proxy::cpus_of_cpu_max;

TEST(Cpus, ACgroupV2QuotaIsRoundedUp) {
  EXPECT_EQ(cpus_of_cpu_max("200000 100000\n"), 2u);
  EXPECT_EQ(cpus_of_cpu_max("50000 100000"), 1u);   // 500m
  EXPECT_EQ(cpus_of_cpu_max("150000 100000"), 2u);  // 1500m
  EXPECT_EQ(cpus_of_cpu_max("max 100000\n"), 0u);   // no limit
  EXPECT_EQ(cpus_of_cpu_max(""), 0u);
  EXPECT_EQ(cpus_of_cpu_max("100000"), 0u);
  EXPECT_EQ(cpus_of_cpu_max("1x0 100000"), 0u);
  EXPECT_EQ(cpus_of_cpu_max("100000 0"), 0u);
}

TEST(Cpus, ACgroupV1QuotaIsRoundedUp) {
  EXPECT_EQ(cpus_of_cfs("250000\n", "100000\n"), 3u);
  EXPECT_EQ(cpus_of_cfs("-1\n", "100000\n"), 0u);  // no limit
  EXPECT_EQ(cpus_of_cfs("", ""), 0u);
}

TEST(Cpus, NeverMoreThanTheAffinityAllowsNorLessThanOne) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
  const auto n = vane::proxy::usable_cpus();
  EXPECT_GE(n, 1u);
  EXPECT_LE(n, static_cast<std::size_t>(CPU_COUNT(&set)));
}
