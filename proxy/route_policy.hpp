#pragma once
// A route's traffic policy, checked and compiled: one function per concept
// (the split, a matcher, session affinity), used alike by the YAML loader
// (proxy/config.cpp), the traffic PUT of the admin API (proxy/traffic.cpp,
// proxy/runtime.cpp) and the route table (proxy/route_table.cpp), so that a
// value is refused by the same rule and in the same words wherever it comes
// from. No YAML and no JSON here: each reader turns its own format's shapes
// into these inputs and places the errors (the loader at FILE:LINE:COL, the
// admin API in its JSON 400).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "filters/decision/decision.hpp"
#include "filters/rules/rules.hpp"
#include "proxy/config.hpp"

namespace vane::proxy {

// One problem of a checked value: the words, and where they belong for a
// reader that can point (`entry`: which element of a list, `whole` for the
// value itself; `field`: which key of it, "" for the element as a whole).
struct policy_error {
  static constexpr std::size_t whole = static_cast<std::size_t>(-1);
  std::size_t entry = whole;
  std::string_view field;
  std::string message;
  bool operator==(const policy_error&) const = default;
};

// RFC 9110 token: header field names, and cookie names (RFC 6265).
bool is_token(std::string_view s);

// ---- The split ----
inline constexpr std::int64_t max_split_weight = 1'000'000;

// A split entry as a reader found it: nullopt for a key that is missing (the
// reader has said so); a weight that is not an integer is read as -1.
struct split_item {
  std::optional<std::string> cluster;
  std::optional<std::int64_t> weight;
};

struct compiled_split {
  std::vector<split_entry> entries;   // every item, in order (a wrong weight as 0)
  std::vector<std::size_t> clusters;  // when no errors: each entry's position in proxy_config::clusters
  std::vector<policy_error> errors;   // in order; empty: the split holds
};

// The split: a non-empty list; each cluster one of `config`'s, named once;
// weights integers from 0 to 1000000, adding up to more than 0.
compiled_split compile_split(std::span<const split_item> items, const proxy_config& config);
// The same for a split already read (the route table's, an override's).
compiled_split compile_split(std::span<const split_entry> split, const proxy_config& config);

// ---- Guard and fallback ----
// The cluster a guard watches (or a fallback leaves) is one of the split's,
// and the split has another cluster to take its traffic. nullopt: it holds.
std::optional<std::string> check_guarded_cluster(std::string_view cluster, std::span<const split_entry> split);

// ---- A matcher ----
// A condition of an A/B rule is checked and compiled by string_matcher::make
// (filters/rules: RE2 through compile_regex); the loader, the traffic PUT (the
// loader's parse_rules) and the route table all call it.

// ---- Session affinity ----
// The cookie names are tokens, the value a cookie-value (printable, without
// space, '"', ',', ';', '\\'), the two cookies differ, max_age is positive.
// `primary_cookie` and `value` may be empty (not pinned; derived value).
std::vector<policy_error> check_session_affinity(const session_affinity_config& a);

// The affinity the request path uses, for route `route` with `split`: checked
// as above, and the split must have a primary (first) and a canary (last).
// nullopt with `error` set otherwise. A value left empty is derived from the
// route and the canary (default_affinity_value).
std::optional<affinity_policy> compile_session_affinity(std::string_view route, const session_affinity_config& a,
                                                        std::span<const split_entry> split, std::string& error);

// A session affinity value when the config gives none: derived from the route
// and its canary, so that every replica agrees.
std::string default_affinity_value(std::string_view route, std::string_view canary);

}  // namespace vane::proxy
