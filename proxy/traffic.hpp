#pragma once
// Traffic overrides of the admin API (PUT/DELETE /routes/NAME/traffic) and
// the JSON views of the config. Pure functions: no sockets, no threads.
//
// Semantics (DESIGN.md): each field named in a PUT overrides the file's value
// until it is removed (DELETE removes every override of the route); fields not
// named keep their current value; validation is all-or-nothing. Overrides
// survive reloads while their route and clusters exist.
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config.hpp"

namespace vane::proxy {

struct route_overrides {
  std::optional<std::vector<split_entry>> split;
  std::optional<std::vector<rule_config>> rules;         // set: overridden (empty: no rules)
  std::optional<std::optional<hash_on_config>> hash_on;  // set: overridden (nullopt inside: off)
  std::optional<std::optional<fault_config>> fault;      // the same
  std::optional<std::optional<session_affinity_config>> session_affinity;
  std::optional<std::optional<mirror_config>> mirror;
  std::optional<std::optional<guard_config>> guard;
  std::optional<std::optional<fallback_config>> fallback;
  bool empty() const {
    return !split && !rules && !hash_on && !fault && !session_affinity && !mirror && !guard && !fallback;
  }
  bool operator==(const route_overrides&) const = default;
};

using overrides_map = std::map<std::string, route_overrides, std::less<>>;

// Applies a PUT body to `current` (the route's overrides so far) and returns the
// new overrides, or an error message (and nothing changes).
struct traffic_update {
  std::optional<route_overrides> overrides;
  std::string error;
};
traffic_update parse_traffic_update(std::string_view body, const proxy_config& config, const route_overrides& current);

// The file config with every override applied. Overrides whose route is gone,
// or that name a cluster that is gone, are dropped from `overrides`; their
// route names are returned in `dropped`.
proxy_config apply_overrides(const proxy_config& file, overrides_map& overrides, std::vector<std::string>& dropped);

// A share in hundredths of a percent as the JSON views show it: 20, 12.5 (never 2E1).
boost::json::value percent_json(std::uint32_t per_10k);

const route_config* find_route(const proxy_config& config, std::string_view name);
bool same_policy(const route_config& a, const route_config& b);

boost::json::object route_policy_json(const route_config& effective, const route_overrides* overrides,
                                      std::uint64_t policy_generation);
boost::json::object config_json(const proxy_config& effective, std::uint64_t generation);

}  // namespace vane::proxy
