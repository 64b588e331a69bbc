#include "proxy/cpus.hpp"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace vane::proxy {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool whole_number(std::string_view s, long long& out) {
  s = trim(s);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// The tighter of two limits, where 0 is none.
std::size_t tighter(std::size_t a, std::size_t b) { return a == 0 ? b : b == 0 ? a : std::min(a, b); }

std::size_t ceil_cpus(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return 0;
  return static_cast<std::size_t>((quota + period - 1) / period);
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return in ? s.str() : std::string();
}

// The smallest quota found in `dir` and its parents up to `root`; 0 for none.
template <class Read>
std::size_t smallest_quota(const std::string& root, std::string path, Read read) {
  std::size_t best = 0;
  for (;;) {
    best = tighter(best, read(root + path));
    if (path.empty() || path == "/") break;
    path = path.substr(0, path.rfind('/'));
  }
  return best;
}

// /proc/self/cgroup: "0::PATH" (v2), "ID:CONTROLLERS:PATH" (v1).
std::size_t cgroup_quota() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  std::size_t best = 0;
  while (std::getline(in, line)) {
    const auto first = line.find(':');
    const auto second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    std::string path = line.substr(second + 1);
    if (!path.empty() && path.back() == '/') path.pop_back();
    if (controllers.empty()) {
      best = tighter(best, smallest_quota("/sys/fs/cgroup", path, [](const std::string& dir) {
                       return cpus_of_cpu_max(read_all(dir + "/cpu.max"));
                     }));
      continue;
    }
    std::istringstream names(controllers);
    for (std::string name; std::getline(names, name, ',');) {
      if (name != "cpu") continue;
      for (const char* mount : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"}) {
        best = tighter(best, smallest_quota(mount, path, [](const std::string& dir) {
                         return cpus_of_cfs(read_all(dir + "/cpu.cfs_quota_us"), read_all(dir + "/cpu.cfs_period_us"));
                       }));
      }
    }
  }
  return best;
}

}  // namespace

std::size_t cpus_of_cpu_max(std::string_view text) {
  text = trim(text);
  const auto space = text.find(' ');
  if (space == std::string_view::npos) return 0;
  long long quota = 0, period = 0;
  if (!whole_number(text.substr(0, space), quota) || !whole_number(text.substr(space + 1), period)) return 0;
  return ceil_cpus(quota, period);
}

std::size_t cpus_of_cfs(std::string_view quota, std::string_view period) {
  long long q = 0, p = 0;
  if (!whole_number(quota, q) || !whole_number(period, p)) return 0;
  return ceil_cpus(q, p);
}

std::size_t usable_cpus() {
  std::size_t n = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) n = static_cast<std::size_t>(CPU_COUNT(&set));
  if (n == 0) n = std::thread::hardware_concurrency();
  return std::max<std::size_t>(tighter(n, cgroup_quota()), 1);
}

}  // namespace vane::proxy
