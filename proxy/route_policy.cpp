#include "proxy/route_policy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>

namespace vane::proxy {

bool is_token(std::string_view s) {
  static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != std::string_view::npos;
  });
}

compiled_split compile_split(std::span<const split_item> items, const proxy_config& config) {
  compiled_split out;
  if (items.empty()) {
    out.errors.push_back({policy_error::whole, "", "split must be a non-empty list of {cluster, weight}"});
    return out;
  }
  std::set<std::string_view> seen;
  std::uint64_t total = 0;
  bool weights_read = true;  // every weight present (a missing one is the reader's error, and no sum is checked)
  for (std::size_t i = 0; i < items.size(); ++i) {
    const split_item& item = items[i];
    split_entry entry;
    if (item.cluster) {
      entry.cluster = *item.cluster;
      if (auto at = config.cluster_index(*item.cluster))
        out.clusters.push_back(*at);
      else
        out.errors.push_back({i, "cluster", fmt::format("split names unknown cluster '{}'", *item.cluster)});
      if (!seen.insert(*item.cluster).second)
        out.errors.push_back({i, "cluster", fmt::format("split names cluster '{}' twice", *item.cluster)});
    }
    if (!item.weight) {
      weights_read = false;
    } else if (*item.weight < 0 || *item.weight > max_split_weight) {
      weights_read = false;
      out.errors.push_back(
          {i, "weight",
           item.cluster
               ? fmt::format("split: weight of '{}' must be an integer from 0 to {}", *item.cluster, max_split_weight)
               : fmt::format("split: weight must be an integer from 0 to {}", max_split_weight)});
    } else {
      entry.weight = static_cast<std::uint32_t>(*item.weight);
      total += entry.weight;
    }
    out.entries.push_back(std::move(entry));
  }
  if (total == 0 && weights_read)
    out.errors.push_back(
        {policy_error::whole, "", "route.split: the weights add up to 0; at least one must be positive"});
  if (!out.errors.empty()) out.clusters.clear();
  return out;
}

compiled_split compile_split(std::span<const split_entry> split, const proxy_config& config) {
  std::vector<split_item> items;
  items.reserve(split.size());
  for (const auto& s : split) items.push_back({s.cluster, s.weight});
  return compile_split(items, config);
}

std::vector<policy_error> check_session_affinity(const session_affinity_config& a) {
  std::vector<policy_error> errors;
  bool names_ok = true;
  for (auto [field, name] : {std::pair{std::string_view("cookie"), &a.cookie},
                             std::pair{std::string_view("primary_cookie"), &a.primary_cookie}}) {
    if (field == "primary_cookie" && name->empty()) continue;  // optional
    if (!is_token(*name)) {
      errors.push_back({policy_error::whole, field,
                        fmt::format("session_affinity.{}: '{}' is not a valid cookie name", field, *name)});
      names_ok = false;
    }
  }
  if (a.max_age.count() <= 0)
    errors.push_back({policy_error::whole, "max_age", "session_affinity.max_age must be positive"});
  // RFC 6265 cookie-value: no controls, space, '"', ',', ';' or '\\'.
  bool value_ok = std::all_of(a.value.begin(), a.value.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '"' && c != ',' && c != ';' && c != '\\';
  });
  if (!value_ok)
    errors.push_back({policy_error::whole, "value",
                      "session_affinity.value: only printable characters without space, '\"', ',', ';', '\\'"});
  if (names_ok && a.cookie == a.primary_cookie)
    errors.push_back({policy_error::whole, "", "session_affinity: cookie and primary_cookie must differ"});
  return errors;
}

std::optional<affinity_policy> compile_session_affinity(std::string_view route, const session_affinity_config& a,
                                                        std::span<const split_entry> split, std::string& error) {
  if (auto errors = check_session_affinity(a); !errors.empty()) {
    error = std::move(errors.front().message);
    return std::nullopt;
  }
  if (split.size() < 2) {
    error = "session_affinity needs a split of at least two clusters (primary first, canary last)";
    return std::nullopt;
  }
  return affinity_policy::make(a.cookie, a.primary_cookie,
                               a.value.empty() ? default_affinity_value(route, split.back().cluster) : a.value,
                               std::chrono::duration_cast<std::chrono::seconds>(a.max_age).count());
}

std::string default_affinity_value(std::string_view route, std::string_view canary) {
  // The same on every replica: FNV-1a 64 of "route/canary", in hex.
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::string_view part : {route, std::string_view("/"), canary}) {
    for (unsigned char c : part) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
  }
  return fmt::format("{:016x}", h);
}

std::optional<std::string> check_guarded_cluster(std::string_view cluster, std::span<const split_entry> split) {
  bool in_split = false;
  for (const auto& e : split) in_split = in_split || e.cluster == cluster;
  if (!in_split) return fmt::format("cluster '{}' is not in the route's split", cluster);
  if (split.size() < 2)
    return fmt::format("cluster '{}' is the split's only cluster: nothing could take its traffic", cluster);
  return std::nullopt;
}

}  // namespace vane::proxy
