#pragma once
// Reading vane-proxy's config (proxy/config.hpp) from YAML, validated as a
// whole: every error carries FILE:LINE:COL; a config with any error is refused
// entirely. Only the code that loads includes this (it brings yaml-cpp); the
// request path sees the schema alone. The semantic checks of a route's policy
// (split, matchers, session affinity) are proxy/route_policy.hpp's, shared with
// the traffic PUT and the route table.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/yaml_doc.hpp"
#include "proxy/config.hpp"

namespace vane::proxy {

// The `rules` and `hash_on` of a route, parsed from YAML (or from the JSON of
// a traffic PUT converted to YAML): errors go to the reader; cluster names are
// returned in `cluster_refs` for the caller to check.
std::vector<rule_config> parse_rules(const YAML::Node& n, yaml_reader& r,
                                     std::vector<std::pair<std::string, YAML::Mark>>& cluster_refs);
std::optional<hash_on_config> parse_hash_on(const YAML::Node& n, yaml_reader& r);
std::optional<session_affinity_config> parse_session_affinity(const YAML::Node& n, yaml_reader& r);
std::optional<mirror_config> parse_mirror(const YAML::Node& n, yaml_reader& r,
                                          std::vector<std::pair<std::string, YAML::Mark>>& cluster_refs);
std::optional<guard_config> parse_guard(const YAML::Node& n, yaml_reader& r,
                                        std::vector<std::pair<std::string, YAML::Mark>>& cluster_refs);
std::optional<fallback_config> parse_fallback(const YAML::Node& n, yaml_reader& r,
                                              std::vector<std::pair<std::string, YAML::Mark>>& cluster_refs);
std::optional<retries_config> parse_retries(const YAML::Node& n, yaml_reader& r);
std::optional<fault_config> parse_fault(const YAML::Node& n, yaml_reader& r, std::string_view what);
header_ops parse_header_ops(const YAML::Node& n, yaml_reader& r, std::string_view what);

// Parses and validates `text` read from `file_name`. Returns nullopt and fills
// `errors` when anything is wrong.
std::optional<proxy_config> parse_proxy_config(const std::string& text, const std::string& file_name,
                                               std::vector<config_error>& errors);
// Same, reading the file first (an unreadable file is one error at 1:1).
std::optional<proxy_config> load_proxy_config(const std::string& path, std::vector<config_error>& errors);

}  // namespace vane::proxy
