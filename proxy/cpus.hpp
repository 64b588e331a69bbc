#pragma once

#include <cstddef>
#include <string_view>

namespace vane::proxy {

// How many CPUs this process can use, for the default of --workers: the CPUs
// it may run on (its affinity mask: a cpuset), and no more than its cgroup's
// CPU quota allows, rounded up (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`,
// of its cgroup and every parent), as Go's runtime and the JVM count them. A
// sidecar limited to 500m on a 64-core node gets 1 worker, not 64. At least 1.
std::size_t usable_cpus();

// The CPUs a quota allows, rounded up; 0 for no limit or text that is not a
// quota. v2: "QUOTA PERIOD" or "max PERIOD" (cpu.max); v1: the two files'
// contents, quota -1 for no limit.
std::size_t cpus_of_cpu_max(std::string_view text);
std::size_t cpus_of_cfs(std::string_view quota, std::string_view period);

}  // namespace vane::proxy
