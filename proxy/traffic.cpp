#include "proxy/traffic.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cctype>

#include "common/grpc.hpp"
#include "proxy/config_load.hpp"
#include "proxy/route_policy.hpp"

namespace vane::proxy {

namespace json = boost::json;

namespace {

// The traffic API takes the YAML's shapes in JSON: convert, then parse with
// the config's own functions, so both accept and refuse exactly the same.
YAML::Node to_yaml(const json::value& v) {
  switch (v.kind()) {
    case json::kind::object: {
      YAML::Node n(YAML::NodeType::Map);
      for (const auto& [k, x] : v.as_object()) n[std::string(k)] = to_yaml(x);
      return n;
    }
    case json::kind::array: {
      YAML::Node n(YAML::NodeType::Sequence);
      for (const auto& x : v.as_array()) n.push_back(to_yaml(x));
      return n;
    }
    case json::kind::string:
      return YAML::Node(std::string(v.as_string()));
    case json::kind::bool_:
      return YAML::Node(v.as_bool() ? "true" : "false");
    case json::kind::null:
      return YAML::Node(YAML::NodeType::Null);
    default:
      return YAML::Node(json::serialize(v));
  }
}

using cluster_refs = std::vector<std::pair<std::string, YAML::Mark>>;

// One overlay field of a traffic PUT, parsed by the config's own function
// from the JSON turned into YAML, its cluster names checked. nullopt: refused
// (`error` says why); an empty inner value: `null`, the feature turned off.
template <class T, class Parse>
std::optional<std::optional<T>> parse_overlay(const json::value& value, std::string_view field,
                                              const proxy_config& config, std::string& error, Parse parse) {
  if (value.is_null()) return std::optional<T>{};
  yaml_reader r("PUT body");
  cluster_refs refs;
  std::optional<T> parsed = parse(to_yaml(value), r, refs);
  if (!r.ok() || !parsed) {
    error = r.ok() ? fmt::format("{}: invalid value", field) : fmt::format("{}: {}", field, r.errors().front().message);
    return std::nullopt;
  }
  for (const auto& ref : refs) {
    if (!config.find_cluster(ref.first)) {
      error = fmt::format("{}: unknown cluster '{}'", field, ref.first);
      return std::nullopt;
    }
  }
  return parsed;
}

json::value match_value(const match_spec& m) {
  json::object o;
  if (m.kind == string_match_kind::present)
    o["present"] = true;
  else
    o[match_kind_name(m.kind)] = m.value;
  return o;
}

json::value rules_json(const std::vector<rule_config>& rules) {
  json::array out;
  for (const auto& r : rules) {
    json::array any;
    for (const auto& alt : r.any) {
      json::object a;
      for (const auto& m : alt) {
        const char* group = m.source == match_source::header   ? "headers"
                            : m.source == match_source::cookie ? "cookies"
                                                               : "query";
        if (!a.contains(group)) a[group] = json::object{};
        a[group].as_object()[m.name] = match_value(m);
      }
      any.push_back(std::move(a));
    }
    out.push_back(json::object{{"match", std::move(any)}, {"cluster", r.cluster}});
  }
  return out;
}

json::value fault_json(const std::optional<fault_config>& f) {
  if (!f) return nullptr;
  json::object o;
  if (f->abort) o["abort"] = json::object{{"status", f->abort->status}, {"percent", percent_json(f->abort->per_10k)}};
  if (f->delay)
    o["delay"] =
        json::object{{"duration", format_duration(f->delay->delay)}, {"percent", percent_json(f->delay->per_10k)}};
  return o;
}

json::value header_ops_json(const header_ops& h) {
  json::object set, add;
  for (const auto& [k, v] : h.set) set[k] = v;
  for (const auto& [k, v] : h.add) add[k] = v;
  json::array remove;
  for (const auto& k : h.remove) remove.push_back(json::string(k));
  return json::object{{"set", std::move(set)}, {"add", std::move(add)}, {"remove", std::move(remove)}};
}

json::value affinity_json(const std::optional<session_affinity_config>& a) {
  if (!a) return nullptr;
  json::object o{{"cookie", a->cookie}, {"max_age", format_duration(a->max_age)}};
  if (!a->primary_cookie.empty()) o["primary_cookie"] = a->primary_cookie;
  if (!a->value.empty()) o["value"] = a->value;
  return o;
}

json::value mirror_json(const std::optional<mirror_config>& m) {
  if (!m) return nullptr;
  return json::object{{"cluster", m->cluster}, {"percent", percent_json(m->per_10k)}, {"max_body", m->max_body}};
}

// A set of gRPC statuses by name ("UNAVAILABLE", ...), as the config may give them.
json::array grpc_codes_json(std::uint32_t codes) {
  json::array out;
  for (const auto name : grpc_code_names(codes)) out.emplace_back(name);
  return out;
}

json::value guard_json(const std::optional<guard_config>& g) {
  if (!g) return nullptr;
  return json::object{{"cluster", g->cluster},
                      {"max_error_percent", percent_json(g->max_error_per_10k)},
                      {"min_requests", g->min_requests},
                      {"window", format_duration(g->window)},
                      {"grpc_failure_codes", grpc_codes_json(g->grpc_failures)}};
}

json::value fallback_json(const std::optional<fallback_config>& f) {
  if (!f) return nullptr;
  json::array on;
  if (f->on.connect_failure) on.push_back("connect-failure");
  if (f->on.reset) on.push_back("reset");
  if (f->on.status_5xx) on.push_back("5xx");
  if (f->on.timeout) on.push_back("timeout");
  for (const auto code : grpc_code_names(f->on.grpc)) {  // as retries.on names them: "deadline-exceeded"
    std::string name(code);
    for (char& ch : name) ch = ch == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    on.emplace_back(name);
  }
  return json::object{{"from", f->from},
                      {"to", f->to},
                      {"on", std::move(on)},
                      {"max_body", f->max_body},
                      {"budget", json::object{{"percent", percent_json(f->budget_per_10k)}, {"min", f->budget_min}}}};
}

json::value hash_on_json(const std::optional<hash_on_config>& h) {
  if (!h) return nullptr;
  switch (h->kind) {
    case hash_kind::header:
      return json::object{{"header", h->name}};
    case hash_kind::cookie:
      return json::object{{"cookie", h->name}};
    case hash_kind::source_ip:
      return json::object{{"source_ip", true}};
  }
  return nullptr;
}

// The JSON's shapes here; the split's own rules are compile_split's, as the file's.
std::optional<std::vector<split_entry>> parse_split(const json::value& v, const proxy_config& config,
                                                    std::string& error) {
  if (!v.is_array()) {
    error = "split must be a non-empty list of {\"cluster\": NAME, \"weight\": N}";
    return std::nullopt;
  }
  std::vector<split_item> items;
  for (const auto& e : v.as_array()) {
    const json::object* o = e.if_object();
    if (!o) {
      error = "split entries must be objects {\"cluster\": NAME, \"weight\": N}";
      return std::nullopt;
    }
    for (const auto& [key, value] : *o) {
      if (key != "cluster" && key != "weight") {
        error = fmt::format("split entry: unknown field '{}'", std::string_view(key));
        return std::nullopt;
      }
    }
    const json::value* cluster = o->if_contains("cluster");
    const json::value* weight = o->if_contains("weight");
    if (!cluster || !cluster->is_string()) {
      error = "split entry: 'cluster' must be a cluster name";
      return std::nullopt;
    }
    // Boost.JSON gives every integer up to INT64_MAX as int64; anything else is not a weight (-1).
    items.push_back({std::string(cluster->as_string()), weight && weight->is_int64() ? weight->as_int64() : -1});
  }
  compiled_split split = compile_split(items, config);
  if (!split.errors.empty()) {
    error = std::move(split.errors.front().message);
    return std::nullopt;
  }
  return std::move(split.entries);
}

json::array split_json(const std::vector<split_entry>& split) {
  json::array a;
  for (const auto& s : split) a.push_back(json::object{{"cluster", s.cluster}, {"weight", s.weight}});
  return a;
}

std::string_view path_kind_key(path_match_kind k) {
  switch (k) {
    case path_match_kind::prefix:
      return "path_prefix";
    case path_match_kind::exact:
      return "path_exact";
    case path_match_kind::regex:
      return "path_regex";
    case path_match_kind::any:
      break;
  }
  return "";
}

}  // namespace

json::value percent_json(std::uint32_t per_10k) {
  if (per_10k % 100 == 0) return per_10k / 100;
  return static_cast<double>(per_10k) / 100.0;
}

const route_config* find_route(const proxy_config& config, std::string_view name) {
  for (const auto& l : config.listeners)
    for (const auto& r : l.routes)
      if (r.name == name) return &r;
  return nullptr;
}

bool same_policy(const route_config& a, const route_config& b) {
  if (a.rules != b.rules || a.hash_on != b.hash_on || a.fault != b.fault || a.session_affinity != b.session_affinity ||
      a.mirror != b.mirror || a.guard != b.guard || a.fallback != b.fallback)
    return false;
  if (a.split.size() != b.split.size()) return false;
  for (std::size_t i = 0; i < a.split.size(); ++i)
    if (a.split[i].cluster != b.split[i].cluster || a.split[i].weight != b.split[i].weight) return false;
  return true;
}

traffic_update parse_traffic_update(std::string_view body, const proxy_config& config, const route_overrides& current) {
  traffic_update out;
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) {
    out.error = fmt::format("body is not JSON: {}", ec.message());
    return out;
  }
  const json::object* o = v.if_object();
  if (!o) {
    out.error = "body must be a JSON object such as {\"split\": [{\"cluster\": \"a\", \"weight\": 90}, ...]}";
    return out;
  }
  route_overrides next = current;
  for (const auto& [key, value] : *o) {
    if (key == "split") {
      if (value.is_null()) {
        out.error = "split cannot be turned off; DELETE /routes/NAME/traffic removes the overrides";
        return out;
      }
      auto split = parse_split(value, config, out.error);
      if (!split) return out;
      next.split = std::move(split);
    } else if (key == "rules") {
      auto rules = parse_overlay<std::vector<rule_config>>(
          value, "rules", config, out.error, [](const YAML::Node& n, yaml_reader& r, cluster_refs& refs) {
            std::vector<rule_config> parsed = parse_rules(n, r, refs);
            return std::optional<std::vector<rule_config>>(std::move(parsed));
          });
      if (!rules) return out;
      next.rules = std::move(*rules).value_or(std::vector<rule_config>{});  // null: no rules
    } else if (key == "hash_on") {
      auto h = parse_overlay<hash_on_config>(
          value, "hash_on", config, out.error,
          [](const YAML::Node& n, yaml_reader& r, cluster_refs&) { return parse_hash_on(n, r); });
      if (!h) return out;
      next.hash_on = std::move(h);
    } else if (key == "fault") {
      auto f = parse_overlay<fault_config>(
          value, "fault", config, out.error,
          [](const YAML::Node& n, yaml_reader& r, cluster_refs&) { return parse_fault(n, r, "fault"); });
      if (!f) return out;
      next.fault = f;
    } else if (key == "session_affinity") {
      auto a = parse_overlay<session_affinity_config>(
          value, "session_affinity", config, out.error,
          [](const YAML::Node& n, yaml_reader& r, cluster_refs&) { return parse_session_affinity(n, r); });
      if (!a) return out;
      next.session_affinity = std::move(a);
    } else if (key == "mirror") {
      auto m = parse_overlay<mirror_config>(
          value, "mirror", config, out.error,
          [](const YAML::Node& n, yaml_reader& r, cluster_refs& refs) { return parse_mirror(n, r, refs); });
      if (!m) return out;
      next.mirror = std::move(m);
    } else if (key == "guard") {
      auto g = parse_overlay<guard_config>(
          value, "guard", config, out.error,
          [](const YAML::Node& n, yaml_reader& r, cluster_refs& refs) { return parse_guard(n, r, refs); });
      if (!g) return out;
      next.guard = std::move(g);
    } else if (key == "fallback") {
      auto f = parse_overlay<fallback_config>(
          value, "fallback", config, out.error,
          [](const YAML::Node& n, yaml_reader& r, cluster_refs& refs) { return parse_fallback(n, r, refs); });
      if (!f) return out;
      next.fallback = std::move(f);
    } else {
      out.error = fmt::format(
          "unknown field '{}' (known: split, rules, mirror, hash_on, session_affinity, fault, guard, fallback)",
          std::string_view(key));
      return out;
    }
  }
  out.overrides = std::move(next);
  return out;
}

proxy_config apply_overrides(const proxy_config& file, overrides_map& overrides, std::vector<std::string>& dropped) {
  proxy_config effective = file;
  for (auto it = overrides.begin(); it != overrides.end();) {
    route_config* route = nullptr;
    for (auto& l : effective.listeners)
      for (auto& r : l.routes)
        if (r.name == it->first) route = &r;
    bool keep = route != nullptr;
    if (keep && it->second.split) keep = compile_split(*it->second.split, effective).errors.empty();
    if (keep && it->second.rules)
      for (const auto& r : *it->second.rules) keep = keep && effective.find_cluster(r.cluster);
    if (keep && it->second.mirror && *it->second.mirror)
      keep = effective.find_cluster((*it->second.mirror)->cluster) != nullptr;
    if (keep && it->second.guard && *it->second.guard)
      keep = effective.find_cluster((*it->second.guard)->cluster) != nullptr;
    if (keep && it->second.fallback && *it->second.fallback)
      keep = effective.find_cluster((*it->second.fallback)->from) && effective.find_cluster((*it->second.fallback)->to);
    if (!keep) {
      dropped.push_back(it->first);
      it = overrides.erase(it);
      continue;
    }
    if (it->second.split) route->split = *it->second.split;
    if (it->second.rules) route->rules = *it->second.rules;
    if (it->second.hash_on) route->hash_on = *it->second.hash_on;
    if (it->second.fault) route->fault = *it->second.fault;
    if (it->second.session_affinity) route->session_affinity = *it->second.session_affinity;
    if (it->second.mirror) route->mirror = *it->second.mirror;
    if (it->second.guard) route->guard = *it->second.guard;
    if (it->second.fallback) route->fallback = *it->second.fallback;
    std::string error;  // an affinity the split cannot carry any more (no canary) is off
    if (route->session_affinity &&
        !compile_session_affinity(route->name, *route->session_affinity, route->split, error))
      route->session_affinity.reset();
    ++it;
  }
  return effective;
}

json::object route_policy_json(const route_config& r, const route_overrides* overrides, std::uint64_t generation) {
  json::array overridden;
  if (overrides && overrides->split) overridden.push_back("split");
  if (overrides && overrides->rules) overridden.push_back("rules");
  if (overrides && overrides->hash_on) overridden.push_back("hash_on");
  if (overrides && overrides->fault) overridden.push_back("fault");
  if (overrides && overrides->session_affinity) overridden.push_back("session_affinity");
  if (overrides && overrides->mirror) overridden.push_back("mirror");
  if (overrides && overrides->guard) overridden.push_back("guard");
  if (overrides && overrides->fallback) overridden.push_back("fallback");
  return {{"name", r.name},
          {"policy_generation", generation},
          {"split", split_json(r.split)},
          {"rules", rules_json(r.rules)},
          {"hash_on", hash_on_json(r.hash_on)},
          {"fault", fault_json(r.fault)},
          {"session_affinity", affinity_json(r.session_affinity)},
          {"mirror", mirror_json(r.mirror)},
          {"guard", guard_json(r.guard)},
          {"fallback", fallback_json(r.fallback)},
          {"overrides", std::move(overridden)}};
}

json::object config_json(const proxy_config& c, std::uint64_t generation) {
  json::array listeners;
  for (const auto& l : c.listeners) {
    json::array routes;
    for (const auto& r : l.routes) {
      json::object match;
      if (!r.host.empty()) match["host"] = r.host;
      if (r.path_kind != path_match_kind::any) match[path_kind_key(r.path_kind)] = r.path;
      routes.push_back(json::object{{"name", r.name},
                                    {"match", std::move(match)},
                                    {"split", split_json(r.split)},
                                    {"rules", rules_json(r.rules)},
                                    {"hash_on", hash_on_json(r.hash_on)},
                                    {"fault", fault_json(r.fault)},
                                    {"session_affinity", affinity_json(r.session_affinity)},
                                    {"mirror", mirror_json(r.mirror)},
                                    {"guard", guard_json(r.guard)},
                                    {"fallback", fallback_json(r.fallback)},
                                    {"request_headers", header_ops_json(r.request_headers)},
                                    {"response_headers", header_ops_json(r.response_headers)},
                                    {"timeout", format_duration(r.timeout)}});
    }
    listeners.push_back(json::object{{"name", l.name},
                                     {"address", l.address.to_string()},
                                     {"forwarded", json::object{{"trust_incoming", l.trust_forwarded}}},
                                     {"routes", std::move(routes)}});
  }
  json::array clusters;
  for (const auto& cl : c.clusters) {
    json::array endpoints;
    for (const auto& e : cl.endpoints) endpoints.push_back(json::string(e.to_string()));
    clusters.push_back(json::object{{"name", cl.name},
                                    {"endpoints", std::move(endpoints)},
                                    {"connect_timeout", format_duration(cl.connect_timeout)},
                                    {"max_connections", cl.max_connections},
                                    {"max_pending", cl.max_pending},
                                    {"fault", fault_json(cl.fault)}});
  }
  return {{"generation", generation},
          {"file", c.file},
          {"admin", json::object{{"address", c.admin.address.to_string()}, {"token_file", c.admin.token_file}}},
          {"drain_delay", format_duration(c.drain_delay)},
          {"drain_timeout", format_duration(c.drain_timeout)},
          {"limits", json::object{{"max_request_headers", c.limits.max_request_headers},
                                  {"max_headers", c.limits.max_headers},
                                  {"max_body", c.limits.max_body},
                                  {"header_timeout", format_duration(c.limits.header_timeout)},
                                  {"idle_timeout", format_duration(c.limits.idle_timeout)},
                                  {"max_request_target", c.limits.max_request_target},
                                  {"max_requests_per_connection", c.limits.max_requests_per_connection},
                                  {"max_connections", c.limits.max_connections},
                                  {"max_in_flight", c.limits.max_in_flight}}},
          {"listeners", std::move(listeners)},
          {"clusters", std::move(clusters)}};
}

}  // namespace vane::proxy
