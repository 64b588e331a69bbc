#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <set>
#include <tuple>

#include "common/grpc.hpp"
#include "filters/route_match/route_match.hpp"
#include "proxy/config_load.hpp"
#include "proxy/http1/message.hpp"
#include "proxy/route_policy.hpp"
#include "proxy/tls.hpp"

namespace vane::proxy {

const cluster_config* proxy_config::find_cluster(std::string_view name) const {
  auto at = cluster_index(name);
  return at ? &clusters[*at] : nullptr;
}

std::optional<std::size_t> proxy_config::cluster_index(std::string_view name) const {
  for (std::size_t i = 0; i < clusters.size(); ++i)
    if (clusters[i].name == name) return i;
  return std::nullopt;
}

namespace {

// Where a policy check's error belongs: the key `field` of `node`, or the
// node itself when the key is absent (or the error is about the whole).
YAML::Node node_of(const YAML::Node& node, std::string_view field) {
  if (!field.empty())
    if (auto v = node[std::string(field)]) return v;
  return node;
}

// Reads one document; keeps the YAML nodes it needs for cross-reference errors.
class config_parser {
 public:
  explicit config_parser(yaml_reader& r) : r_(r) {}

  std::optional<proxy_config> parse(const YAML::Node& root, const std::string& file) {
    proxy_config cfg;
    cfg.file = file;
    if (!root.IsDefined() || root.IsNull()) {
      if (r_.ok()) r_.error(root, "the config is empty: it needs at least 'listeners' and 'clusters'");
      return std::nullopt;
    }
    if (!r_.expect_map(root, "the config")) return std::nullopt;
    r_.check_keys(root, "config", {"listeners", "clusters", "limits", "admin", "drain_delay", "drain_timeout"});
    if (auto n = root["admin"]) parse_admin(n, cfg.admin);
    if (auto v = root["drain_delay"])
      if (auto d = r_.get_duration(v, "drain_delay")) cfg.drain_delay = *d;
    if (auto v = root["drain_timeout"])
      if (auto d = r_.get_duration(v, "drain_timeout")) cfg.drain_timeout = *d;
    if (auto n = root["limits"]) parse_limits(n, cfg.limits);
    if (r_.require(root, "clusters", "config")) parse_clusters(root["clusters"], cfg);
    if (r_.require(root, "listeners", "config")) parse_listeners(root["listeners"], cfg);
    check_references(cfg);
    if (!r_.ok()) return std::nullopt;
    return cfg;
  }

 private:
  void parse_admin(const YAML::Node& n, admin_config& a) {
    if (!r_.expect_map(n, "admin")) return;
    r_.check_keys(n, "admin", {"address", "token_file"});
    if (auto v = n["address"]) {
      if (auto hp = address_of(v, "admin.address")) {
        boost::system::error_code ec;
        boost::asio::ip::make_address(hp->host, ec);
        if (ec)
          r_.error(v, fmt::format("admin.address: '{}' is not an IP address", hp->host));
        else
          a.address = *hp;
      }
    }
    if (auto v = n["token_file"]) {
      if (auto path = path_of(v, "admin.token_file")) {  // (relative to the config's directory)
        std::string message;
        auto text = read_file(*path, message);
        if (!text) {
          r_.error(v, fmt::format("admin.token_file: {}", message));
        } else {
          while (!text->empty() && std::isspace(static_cast<unsigned char>(text->back()))) text->pop_back();
          if (text->empty()) r_.error(v, fmt::format("admin.token_file: {} is empty", *path));
          a.token_file = *path;
          a.token = *text;
        }
      }
    }
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(a.address.host, ec);
    if (!ec && !address.is_loopback() && a.token_file.empty() && r_.ok())
      r_.error(n, fmt::format("admin.token_file is required when admin.address ({}) is not loopback",
                              a.address.to_string()));
  }

  void parse_limits(const YAML::Node& n, limits_config& l) {
    if (!r_.expect_map(n, "limits")) return;
    r_.check_keys(
        n, "limits",
        {"max_request_headers", "max_headers", "max_body", "header_timeout", "idle_timeout", "max_request_target",
         "max_header_field", "max_requests_per_connection", "max_connections", "max_in_flight", "h2"});
    if (auto h = n["h2"]; h && r_.expect_map(h, "limits.h2")) {
      r_.check_keys(
          h, "limits.h2",
          {"max_concurrent_streams", "initial_stream_window", "initial_connection_window", "max_header_list"});
      if (auto v = h["max_concurrent_streams"])
        if (auto i = r_.get_int(v, "limits.h2.max_concurrent_streams", 1, 10'000))
          l.h2.max_concurrent_streams = static_cast<std::uint32_t>(*i);
      auto window = [&](const char* key, std::uint32_t& out, std::uint64_t least) {
        if (auto v = h[key]) {
          if (auto size = r_.get_size(v, fmt::format("limits.h2.{}", key))) {
            if (*size < least || *size > 0x7fffffffU)  // RFC 9113 §6.9.2: at most 2^31-1
              r_.error(v, fmt::format("limits.h2.{} must be between {} bytes and 2GiB-1", key, least));
            else
              out = static_cast<std::uint32_t>(*size);
          }
        }
      };
      window("initial_stream_window", l.h2.initial_stream_window, 1024);
      window("initial_connection_window", l.h2.initial_connection_window, 65535);
      window("max_header_list", l.h2.max_header_list, 1024);
    }
    if (auto v = n["max_request_headers"]) {
      if (auto s = r_.get_size(v, "limits.max_request_headers")) {
        if (*s < 1024 || *s > (1u << 20))
          r_.error(v, "limits.max_request_headers must be between 1KiB and 1MiB");
        else
          l.max_request_headers = *s;
      }
    }
    if (auto v = n["max_headers"])
      if (auto i = r_.get_int(v, "limits.max_headers", 1, 10'000)) l.max_headers = static_cast<std::uint32_t>(*i);
    if (auto v = n["max_body"])
      if (auto s = r_.get_size(v, "limits.max_body")) l.max_body = *s;
    if (auto v = n["header_timeout"]) positive_duration(v, "limits.header_timeout", l.header_timeout);
    if (auto v = n["idle_timeout"]) positive_duration(v, "limits.idle_timeout", l.idle_timeout);
    if (auto v = n["max_request_target"]) {
      if (auto s = r_.get_size(v, "limits.max_request_target")) {
        if (*s < 256 || *s > (1u << 20))
          r_.error(v, "limits.max_request_target must be between 256 and 1MiB");
        else
          l.max_request_target = *s;
      }
    }
    if (auto v = n["max_header_field"]) {
      if (auto s = r_.get_size(v, "limits.max_header_field")) {
        if (*s < 256 || *s > (1u << 20))
          r_.error(v, "limits.max_header_field must be between 256 and 1MiB");
        else
          l.max_header_field = *s;
      }
    }
    if (auto v = n["max_requests_per_connection"])
      if (auto i = r_.get_int(v, "limits.max_requests_per_connection", 0, 100'000'000))
        l.max_requests_per_connection = static_cast<std::uint32_t>(*i);
    if (auto v = n["max_connections"])
      if (auto i = r_.get_int(v, "limits.max_connections", 1, 10'000'000))
        l.max_connections = static_cast<std::uint32_t>(*i);
    if (auto v = n["max_in_flight"])
      if (auto i = r_.get_int(v, "limits.max_in_flight", 1, 10'000'000))
        l.max_in_flight = static_cast<std::uint32_t>(*i);
  }

  void positive_duration(const YAML::Node& v, std::string_view what, duration& out) {
    if (auto d = r_.get_duration(v, what)) {
      if (d->count() <= 0)
        r_.error(v, fmt::format("{} must be greater than 0", what));
      else
        out = *d;
    }
  }

  std::optional<std::string> name_of(const YAML::Node& n, std::string_view what, std::set<std::string>& seen) {
    if (!r_.require(n, "name", what)) return std::nullopt;
    auto name = r_.get_string(n["name"], fmt::format("{}.name", what));
    if (!name) return std::nullopt;
    if (name->empty()) {
      r_.error(n["name"], fmt::format("{}.name must not be empty", what));
      return std::nullopt;
    }
    if (!seen.insert(*name).second) {
      r_.error(n["name"], fmt::format("{} name '{}' is used twice", what, *name));
      return std::nullopt;
    }
    return name;
  }

  std::optional<host_port> address_of(const YAML::Node& n, std::string_view what) {
    auto text = r_.get_string(n, what);
    if (!text) return std::nullopt;
    auto hp = parse_host_port(*text);
    if (!hp) r_.error(n, fmt::format("{}: '{}' is not HOST:PORT", what, *text));
    return hp;
  }

  void parse_clusters(const YAML::Node& n, proxy_config& cfg) {
    if (!r_.expect_sequence(n, "clusters")) return;
    std::set<std::string> names;
    for (const auto& c : n) {
      if (!r_.expect_map(c, "a cluster")) continue;
      r_.check_keys(c, "cluster",
                    {"name", "endpoints", "connect_timeout", "max_connections", "max_pending", "health_check",
                     "dns_refresh_rate", "fault", "tls", "protocol"});
      cluster_config cc;
      auto name = name_of(c, "cluster", names);
      if (name) cc.name = *name;
      if (auto v = c["protocol"]) {
        if (auto p = r_.get_string(v, "cluster.protocol")) {
          if (*p == "http1")
            cc.protocol = upstream_protocol::http1;
          else if (*p == "h2")
            cc.protocol = upstream_protocol::h2;
          else
            r_.error(v, fmt::format("cluster.protocol must be http1 or h2, not \"{}\"", *p));
        }
      }
      if (r_.require(c, "endpoints", "cluster")) {
        const auto& eps = c["endpoints"];
        if (r_.expect_sequence(eps, "cluster.endpoints")) {
          if (eps.size() == 0) r_.error(eps, "cluster.endpoints must name at least one HOST:PORT");
          for (const auto& e : eps) {
            if (auto hp = address_of(e, "endpoint")) {
              if (hp->port == 0)
                r_.error(e, "endpoint port must not be 0");
              else
                cc.endpoints.push_back(*hp);
            }
          }
        }
      }
      if (auto v = c["connect_timeout"]) positive_duration(v, "cluster.connect_timeout", cc.connect_timeout);
      if (auto v = c["dns_refresh_rate"]) positive_duration(v, "cluster.dns_refresh_rate", cc.dns_refresh_rate);
      if (auto h = c["health_check"]) parse_health_check(h, cc);
      if (auto v = c["max_connections"])
        if (auto i = r_.get_int(v, "cluster.max_connections", 1, 1'000'000))
          cc.max_connections = static_cast<std::uint32_t>(*i);
      if (auto v = c["max_pending"])
        if (auto i = r_.get_int(v, "cluster.max_pending", 0, 1'000'000))
          cc.max_pending = static_cast<std::uint32_t>(*i);
      if (auto f = c["fault"]) cc.fault = parse_fault(f, r_, "cluster.fault");
      if (auto t = c["tls"]) cc.tls = parse_cluster_tls(t);
      if (cc.tls) cc.tls->h2 = cc.protocol == upstream_protocol::h2;
      cfg.clusters.push_back(std::move(cc));
    }
  }

  // A path in the config, relative to the config file's directory (so that a
  // config and its certificates can move together, as a mounted Secret).
  std::optional<std::string> path_of(const YAML::Node& n, std::string_view what) {
    auto text = r_.get_string(n, what);
    if (!text) return std::nullopt;
    if (text->empty()) {
      r_.error(n, fmt::format("{} must name a file", what));
      return std::nullopt;
    }
    std::filesystem::path p(*text);
    if (p.is_relative()) p = std::filesystem::path(r_.file()).parent_path() / p;
    return p.lexically_normal().string();
  }

  std::optional<tls_certificate_config> parse_certificate(const YAML::Node& n, std::string_view what, bool with_names) {
    tls_certificate_config c;
    const bool has_certificate = r_.require(n, "certificate", what);  // both reported when both are missing
    const bool has_key = r_.require(n, "private_key", what);
    const bool ok = has_certificate && has_key;
    if (auto v = n["certificate"])
      if (auto p = path_of(v, fmt::format("{}.certificate", what))) c.certificate = *p;
    if (auto v = n["private_key"])
      if (auto p = path_of(v, fmt::format("{}.private_key", what))) c.private_key = *p;
    if (with_names) {
      if (auto names = n["server_names"]) {
        if (r_.expect_sequence(names, "server_names")) {
          for (const auto& name : names) {
            auto s = r_.get_string(name, "server_names");
            if (!s) continue;
            if (s->empty() || s->find_first_of(" /:") != std::string::npos ||
                (s->find('*') != std::string::npos && (s->rfind("*.", 0) != 0 || s->find('*', 1) != std::string::npos)))
              r_.error(name, fmt::format("server_names: '{}' is not a host name or *.suffix", *s));
            else
              c.server_names.push_back(*s);
          }
        }
      }
    }
    if (!ok || c.certificate.empty() || c.private_key.empty()) return std::nullopt;
    return c;
  }

  std::optional<listener_tls_config> parse_listener_tls(const YAML::Node& n) {
    if (!r_.expect_map(n, "listener.tls")) return std::nullopt;
    r_.check_keys(
        n, "listener.tls",
        {"certificate", "private_key", "certificates", "client_ca", "require_client_certificate", "handshake_timeout"});
    listener_tls_config t;
    const std::size_t errors_before = r_.errors().size();
    bool single = n["certificate"] || n["private_key"];
    if (single && n["certificates"]) {
      r_.error(n, "listener.tls: give either certificate/private_key or certificates, not both");
      return std::nullopt;
    }
    if (single) {
      if (auto c = parse_certificate(n, "listener.tls", false)) t.certificates.push_back(*c);
    } else if (auto list = n["certificates"]) {
      if (r_.expect_sequence(list, "listener.tls.certificates")) {
        if (list.size() == 0) r_.error(list, "listener.tls.certificates must list at least one certificate");
        for (const auto& c : list) {
          if (!r_.expect_map(c, "a certificate")) continue;
          r_.check_keys(c, "certificate", {"certificate", "private_key", "server_names"});
          if (auto cert = parse_certificate(c, "certificate", true)) t.certificates.push_back(*cert);
        }
      }
    } else {
      r_.error(n, "listener.tls needs certificate and private_key (or certificates)");
    }
    if (auto v = n["client_ca"])
      if (auto p = path_of(v, "listener.tls.client_ca")) t.client_ca = *p;
    if (auto v = n["require_client_certificate"])
      if (auto b = r_.get_bool(v, "listener.tls.require_client_certificate")) t.require_client_certificate = *b;
    if (t.require_client_certificate && t.client_ca.empty())
      r_.error(n, "listener.tls.require_client_certificate needs client_ca");
    if (auto v = n["handshake_timeout"]) positive_duration(v, "listener.tls.handshake_timeout", t.handshake_timeout);
    if (r_.errors().size() != errors_before) return std::nullopt;
    // Load them now: a certificate that cannot be used refuses the config
    // (and a reload keeps the old one), pointing at the tls block.
    std::string error;
    if (!server_tls::make(t, error)) {
      r_.error(n, fmt::format("listener.tls: {}", error));
      return std::nullopt;
    }
    return t;
  }

  std::optional<cluster_tls_config> parse_cluster_tls(const YAML::Node& n) {
    if (!r_.expect_map(n, "cluster.tls")) return std::nullopt;
    r_.check_keys(n, "cluster.tls", {"sni", "ca", "verify", "certificate", "private_key"});
    cluster_tls_config t;
    const std::size_t errors_before = r_.errors().size();
    if (auto v = n["sni"]) {
      if (auto s = r_.get_string(v, "cluster.tls.sni")) {
        // A DNS name (RFC 6066 §3): what OpenSSL takes as SNI, at most 253 characters.
        const bool name_chars = std::all_of(s->begin(), s->end(), [](char ch) {
          return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == '_' || ch == ':';
        });
        if (s->empty() || s->size() > 253 || !name_chars)
          r_.error(v, fmt::format("cluster.tls.sni: '{}' is not a host name", s->substr(0, 64)));
        else
          t.sni = *s;
      }
    }
    if (auto v = n["ca"])
      if (auto p = path_of(v, "cluster.tls.ca")) t.ca = *p;
    if (auto v = n["verify"])
      if (auto b = r_.get_bool(v, "cluster.tls.verify")) t.verify = *b;
    if (n["certificate"] || n["private_key"])
      if (auto c = parse_certificate(n, "cluster.tls", false)) {
        t.certificate = c->certificate;
        t.private_key = c->private_key;
      }
    if (r_.errors().size() != errors_before) return std::nullopt;
    std::string error;
    if (!client_tls::make(t, error)) {
      r_.error(n, fmt::format("cluster.tls: {}", error));
      return std::nullopt;
    }
    return t;
  }

  void parse_health_check(const YAML::Node& h, cluster_config& cc) {
    if (!r_.expect_map(h, "cluster.health_check")) return;
    r_.check_keys(h, "health_check", {"path", "grpc", "interval", "unhealthy", "healthy"});
    health_check_config hc;
    if (auto g = h["grpc"]) {
      if (r_.expect_map(g, "health_check.grpc")) {
        r_.check_keys(g, "health_check.grpc", {"service"});
        hc.grpc_service = "";
        if (auto v = g["service"])
          if (auto name = r_.get_string(v, "health_check.grpc.service")) hc.grpc_service = *name;
      }
      if (cc.protocol != upstream_protocol::h2)
        r_.error(g, "health_check.grpc needs the cluster's protocol: h2 (gRPC speaks HTTP/2)");
      if (h["path"]) r_.error(h["path"], "health_check: path or grpc, not both");
    } else if (r_.require(h, "path", "health_check")) {
      if (auto p = r_.get_string(h["path"], "health_check.path")) {
        if (p->empty() || p->front() != '/') r_.error(h["path"], "health_check.path must start with '/'");
        hc.path = *p;
      }
    }
    if (auto v = h["interval"]) positive_duration(v, "health_check.interval", hc.interval);
    if (auto v = h["unhealthy"])
      if (auto i = r_.get_int(v, "health_check.unhealthy", 1, 100)) hc.unhealthy = static_cast<std::uint32_t>(*i);
    if (auto v = h["healthy"])
      if (auto i = r_.get_int(v, "health_check.healthy", 1, 100)) hc.healthy = static_cast<std::uint32_t>(*i);
    cc.health_check = hc;
  }

  void parse_listeners(const YAML::Node& n, proxy_config& cfg) {
    if (!r_.expect_sequence(n, "listeners")) return;
    if (n.size() == 0) r_.error(n, "listeners must name at least one listener");
    std::set<std::string> names;
    std::set<std::string> addresses;
    for (const auto& l : n) {
      if (!r_.expect_map(l, "a listener")) continue;
      r_.check_keys(l, "listener", {"name", "address", "forwarded", "routes", "tls", "protocols"});
      listener_config lc;
      if (auto name = name_of(l, "listener", names)) lc.name = *name;
      if (r_.require(l, "address", "listener")) {
        if (auto hp = address_of(l["address"], "listener.address")) {
          lc.address = *hp;
          if (hp->port != 0 && !addresses.insert(hp->to_string()).second)
            r_.error(l["address"], fmt::format("listener address {} is used twice", hp->to_string()));
        }
      }
      if (auto f = l["forwarded"]) {
        if (r_.expect_map(f, "listener.forwarded")) {
          r_.check_keys(f, "forwarded", {"trust_incoming"});
          if (auto t = f["trust_incoming"])
            if (auto b = r_.get_bool(t, "forwarded.trust_incoming")) lc.trust_forwarded = *b;
        }
      }
      if (auto p = l["protocols"]; p && r_.expect_sequence(p, "listener.protocols")) {
        lc.http1 = lc.h2 = false;
        for (const auto& v : p) {
          auto name = r_.get_string(v, "listener.protocols");
          if (!name) continue;
          if (*name == "http1")
            lc.http1 = true;
          else if (*name == "h2")
            lc.h2 = true;
          else
            r_.error(v, fmt::format("listener.protocols: \"{}\" is not a protocol (http1 or h2; h2c by Upgrade is "
                                    "not offered)",
                                    *name));
        }
        if (p.size() == 0) r_.error(p, "listener.protocols must name http1, h2 or both");
      }
      if (auto t = l["tls"]) lc.tls = parse_listener_tls(t);
      if (lc.tls) {
        lc.tls->alpn_h2 = lc.h2;
        lc.tls->alpn_http1 = lc.http1;
      }
      if (r_.require(l, "routes", "listener")) {
        const auto& routes = l["routes"];
        if (r_.expect_sequence(routes, "listener.routes"))
          for (const auto& rt : routes) parse_route(rt, lc, cfg);
      }
      cfg.listeners.push_back(std::move(lc));
    }
  }

  void parse_route(const YAML::Node& n, listener_config& lc, const proxy_config& cfg) {
    if (!r_.expect_map(n, "a route")) return;
    r_.check_keys(n, "route",
                  {"name", "match", "split", "timeout", "rules", "hash_on", "fault", "request_headers",
                   "response_headers", "session_affinity", "retries", "mirror", "guard", "fallback"});
    route_config rc;
    if (auto name = name_of(n, "route", route_names_)) {
      // The metrics and the access log name a request no route matched route "none": a route of that
      // name would be counted with them.
      if (*name == "none")
        r_.error(n["name"],
                 "route name 'none' is taken: the metrics count requests no route matched as route \"none\"");
      else
        rc.name = *name;
    }
    if (auto m = n["match"]) parse_route_match(m, rc);
    if (r_.require(n, "split", "route")) parse_split(n["split"], rc, cfg);
    if (auto rules = n["rules"]) rc.rules = parse_rules(rules, r_, rule_refs_);
    if (auto h = n["hash_on"]) rc.hash_on = parse_hash_on(h, r_);
    if (auto f = n["fault"]) rc.fault = parse_fault(f, r_, "route.fault");
    if (auto rt = n["retries"]) rc.retries = parse_retries(rt, r_);
    if (auto m = n["mirror"]) rc.mirror = parse_mirror(m, r_, cluster_refs_);
    if (auto g = n["guard"]) {
      rc.guard = parse_guard(g, r_, cluster_refs_);
      check_guarded(g, "cluster", rc.split);
    }
    if (auto f = n["fallback"]) {
      rc.fallback = parse_fallback(f, r_, cluster_refs_);
      check_guarded(f, "from", rc.split);
    }
    if (auto a = n["session_affinity"]) {
      rc.session_affinity = parse_session_affinity(a, r_);
      std::string error;
      if (rc.session_affinity && !compile_session_affinity(rc.name, *rc.session_affinity, rc.split, error))
        r_.error(a, error);
    }
    if (auto h = n["request_headers"]) rc.request_headers = parse_header_ops(h, r_, "request_headers");
    if (auto h = n["response_headers"]) rc.response_headers = parse_header_ops(h, r_, "response_headers");
    if (auto v = n["timeout"]) positive_duration(v, "route.timeout", rc.timeout);
    lc.routes.push_back(std::move(rc));
  }

  // The guard's cluster (and the fallback's `from`) is one of the split's,
  // and the split has another to send its traffic to.
  void check_guarded(const YAML::Node& n, const char* key, const std::vector<split_entry>& split) {
    if (!n.IsMap() || !n[key] || !n[key].IsScalar()) return;  // (the parser said what is wrong)
    if (auto error = check_guarded_cluster(n[key].Scalar(), split)) r_.error(n[key], *error);
  }

  void parse_route_match(const YAML::Node& m, route_config& rc) {
    if (!r_.expect_map(m, "route.match")) return;
    r_.check_keys(m, "match", {"host", "path_prefix", "path_exact", "path_regex"});
    if (auto h = m["host"]) {
      if (auto s = r_.get_string(h, "match.host")) {
        if (s->find('*') != std::string::npos && !(s->starts_with("*.") && s->find('*', 1) == std::string::npos) &&
            *s != "*")
          r_.error(h, fmt::format("match.host '{}': a wildcard is only allowed as a leading '*.'", *s));
        else
          rc.host = *s;
      }
    }
    int path_keys = 0;
    for (auto [key, kind] :
         {std::pair{"path_prefix", path_match_kind::prefix}, std::pair{"path_exact", path_match_kind::exact},
          std::pair{"path_regex", path_match_kind::regex}}) {
      auto v = m[key];
      if (!v) continue;
      if (++path_keys > 1) {
        r_.error(v, "match: give only one of path_prefix, path_exact, path_regex");
        continue;
      }
      auto s = r_.get_string(v, fmt::format("match.{}", key));
      if (!s) continue;
      if (kind == path_match_kind::regex) {
        if (auto m = path_matcher::regex(*s); !m.valid()) {  // as the route table compiles it
          r_.error(v, fmt::format("match.path_regex: {}", m.error()));
          continue;
        }
      } else if (s->empty() || s->front() != '/') {
        r_.error(v, fmt::format("match.{} must start with '/'", key));
        continue;
      }
      rc.path_kind = kind;
      rc.path = *s;
    }
  }

  // The YAML's shapes here; the split's own rules are compile_split's.
  void parse_split(const YAML::Node& n, route_config& rc, const proxy_config& cfg) {
    if (!r_.expect_sequence(n, "route.split")) return;
    std::vector<split_item> items;
    std::vector<YAML::Node> nodes;  // of each item, for the errors
    for (const auto& e : n) {
      if (!r_.expect_map(e, "a split entry")) continue;
      r_.check_keys(e, "split entry", {"cluster", "weight"});
      split_item item;
      if (r_.require(e, "cluster", "split entry")) item.cluster = r_.get_string(e["cluster"], "split.cluster");
      if (r_.require(e, "weight", "split entry"))  // not an integer: the reader's error; the range is the split's
        item.weight = r_.get_int(e["weight"], "split.weight", INT64_MIN, INT64_MAX);
      items.push_back(std::move(item));
      nodes.push_back(e);
    }
    if (items.empty() && n.size() != 0) return;  // no entry was a map: each said so
    compiled_split split = compile_split(items, cfg);
    for (const auto& e : split.errors)
      r_.error(e.entry == policy_error::whole ? n : node_of(nodes[e.entry], e.field), e.message);
    rc.split = std::move(split.entries);
  }

  void check_references(const proxy_config& cfg) {
    for (const auto& [name, mark] : rule_refs_)
      if (!cfg.find_cluster(name)) r_.error(mark, fmt::format("rule names unknown cluster '{}'", name));
    for (const auto& [name, mark] : cluster_refs_)
      if (!cfg.find_cluster(name)) r_.error(mark, fmt::format("unknown cluster '{}'", name));
  }

  yaml_reader& r_;
  std::set<std::string> route_names_;  // unique across listeners: the admin API names routes alone
  std::vector<std::pair<std::string, YAML::Mark>> rule_refs_;
  std::vector<std::pair<std::string, YAML::Mark>> cluster_refs_;
};

}  // namespace

namespace {

std::optional<match_spec> parse_matcher(const YAML::Node& n, yaml_reader& r, match_source source,
                                        const std::string& name) {
  if (!r.expect_map(n, "a matcher ({exact|prefix|suffix|regex: VALUE} or {present: true})")) return std::nullopt;
  if (n.size() != 1) {
    r.error(n, fmt::format("matcher of '{}': give exactly one of exact, prefix, suffix, regex, present", name));
    return std::nullopt;
  }
  auto it = n.begin();
  std::string key = it->first.as<std::string>();
  match_spec m{source, name, string_match_kind::exact, {}};
  auto kind = match_kind_from_name(key);
  if (!kind) {
    r.error(it->first, fmt::format("unknown matcher '{}' (exact, prefix, suffix, regex, present)", key));
    return std::nullopt;
  }
  m.kind = *kind;
  if (m.kind == string_match_kind::present) {
    auto b = r.get_bool(it->second, "present");
    if (!b) return std::nullopt;
    if (!*b) {
      r.error(it->second, "present: only true is supported (match the absence with a rule that does not name it)");
      return std::nullopt;
    }
    return m;
  }
  auto value = r.get_string(it->second, key);
  if (!value) return std::nullopt;
  std::string error;
  if (!string_matcher::make(m.kind, *value, error)) {
    r.error(it->second, fmt::format("{} of '{}': {}", key, name, error));
    return std::nullopt;
  }
  m.value = std::move(*value);
  return m;
}

}  // namespace

std::vector<rule_config> parse_rules(const YAML::Node& n, yaml_reader& r,
                                     std::vector<std::pair<std::string, YAML::Mark>>& cluster_refs) {
  std::vector<rule_config> out;
  if (!r.expect_sequence(n, "route.rules")) return out;
  for (const auto& rule : n) {
    if (!r.expect_map(rule, "a rule")) continue;
    r.check_keys(rule, "rule", {"match", "cluster"});
    rule_config rc;
    if (r.require(rule, "cluster", "rule")) {
      if (auto c = r.get_string(rule["cluster"], "rule.cluster")) {
        rc.cluster = *c;
        cluster_refs.push_back({*c, rule["cluster"].Mark()});
      }
    }
    if (r.require(rule, "match", "rule") && r.expect_sequence(rule["match"], "rule.match")) {
      if (rule["match"].size() == 0) r.error(rule["match"], "rule.match must hold at least one alternative");
      for (const auto& alt : rule["match"]) {
        if (!r.expect_map(alt, "a match alternative")) continue;
        r.check_keys(alt, "match alternative", {"headers", "cookies", "query"});
        std::vector<match_spec> all;
        std::size_t named = 0;  // conditions written, valid or not
        for (auto [key, source] :
             {std::pair{"headers", match_source::header}, std::pair{"cookies", match_source::cookie},
              std::pair{"query", match_source::query}}) {
          auto group = alt[key];
          if (!group || !r.expect_map(group, key)) continue;
          for (const auto& entry : group) {
            ++named;
            std::string name = entry.first.as<std::string>();
            if (source == match_source::header)
              std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
            if (auto m = parse_matcher(entry.second, r, source, name)) all.push_back(std::move(*m));
          }
        }
        if (named == 0) r.error(alt, "a match alternative needs at least one of headers, cookies, query");
        rc.any.push_back(std::move(all));
      }
    }
    out.push_back(std::move(rc));
  }
  return out;
}

std::optional<hash_on_config> parse_hash_on(const YAML::Node& n, yaml_reader& r) {
  if (!r.expect_map(n, "route.hash_on")) return std::nullopt;
  r.check_keys(n, "hash_on", {"header", "cookie", "source_ip"});
  if (n.size() != 1) {
    r.error(n, "hash_on: give exactly one of header: NAME, cookie: NAME, source_ip: true");
    return std::nullopt;
  }
  hash_on_config h;
  if (auto v = n["header"]) {
    auto name = r.get_string(v, "hash_on.header");
    if (name && name->empty()) r.error(v, "hash_on.header: a header name is required");
    if (!name || name->empty()) return std::nullopt;
    h.kind = hash_kind::header;
    h.name = *name;
    std::transform(h.name.begin(), h.name.end(), h.name.begin(), [](unsigned char c) { return std::tolower(c); });
  } else if (auto c = n["cookie"]) {
    auto name = r.get_string(c, "hash_on.cookie");
    if (name && name->empty()) r.error(c, "hash_on.cookie: a cookie name is required");
    if (!name || name->empty()) return std::nullopt;
    h.kind = hash_kind::cookie;
    h.name = *name;
  } else if (auto s = n["source_ip"]) {
    auto b = r.get_bool(s, "hash_on.source_ip");
    if (!b) return std::nullopt;
    if (!*b) {
      r.error(s, "hash_on.source_ip: only true (leave hash_on out for an even pick)");
      return std::nullopt;
    }
    h.kind = hash_kind::source_ip;
  } else {
    return std::nullopt;
  }
  return h;
}

namespace {

// A share in percent (0 to 100, decimals allowed) as hundredths of a percent.
std::optional<std::uint32_t> percent_of(const YAML::Node& n, yaml_reader& r, std::string_view what) {
  double v = -1;
  if (n.IsScalar()) {
    try {
      v = n.as<double>();
    } catch (const YAML::Exception&) {
      v = -1;
    }
  }
  if (!(v >= 0 && v <= 100)) {
    r.error(n, fmt::format("{} must be a number from 0 to 100", what));
    return std::nullopt;
  }
  return static_cast<std::uint32_t>(std::lround(v * 100));
}

bool header_value_ok(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

std::optional<fault_config> parse_fault(const YAML::Node& n, yaml_reader& r, std::string_view what) {
  if (!r.expect_map(n, what)) return std::nullopt;
  r.check_keys(n, "fault", {"abort", "delay"});
  fault_config f;
  bool ok = true;
  if (auto a = n["abort"]) {
    if (r.expect_map(a, "fault.abort")) {
      r.check_keys(a, "fault.abort", {"status", "percent"});
      abort_fault af;
      if (r.require(a, "status", "fault.abort")) {
        if (auto st = r.get_int(a["status"], "fault.abort.status", 200, 599))
          af.status = static_cast<unsigned>(*st);
        else
          ok = false;
      } else {
        ok = false;
      }
      if (r.require(a, "percent", "fault.abort")) {
        if (auto p = percent_of(a["percent"], r, "fault.abort.percent"))
          af.per_10k = *p;
        else
          ok = false;
      } else {
        ok = false;
      }
      f.abort = af;
    } else {
      ok = false;
    }
  }
  if (auto d = n["delay"]) {
    if (r.expect_map(d, "fault.delay")) {
      r.check_keys(d, "fault.delay", {"duration", "percent"});
      delay_fault df;
      if (r.require(d, "duration", "fault.delay")) {
        if (auto v = r.get_duration(d["duration"], "fault.delay.duration"))
          df.delay = *v;
        else
          ok = false;
      } else {
        ok = false;
      }
      if (r.require(d, "percent", "fault.delay")) {
        if (auto p = percent_of(d["percent"], r, "fault.delay.percent"))
          df.per_10k = *p;
        else
          ok = false;
      } else {
        ok = false;
      }
      f.delay = df;
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return f;
}

std::optional<mirror_config> parse_mirror(const YAML::Node& n, yaml_reader& r,
                                          std::vector<std::pair<std::string, YAML::Mark>>& cluster_refs) {
  if (!r.expect_map(n, "route.mirror")) return std::nullopt;
  r.check_keys(n, "mirror", {"cluster", "percent", "max_body"});
  mirror_config m;
  bool ok = r.require(n, "cluster", "mirror");
  if (ok) {
    if (auto c = r.get_string(n["cluster"], "mirror.cluster")) {
      m.cluster = *c;
      cluster_refs.push_back({*c, n["cluster"].Mark()});
    } else {
      ok = false;
    }
  }
  if (auto v = n["percent"]) {
    if (auto p = percent_of(v, r, "mirror.percent"))
      m.per_10k = *p;
    else
      ok = false;
  }
  if (auto v = n["max_body"]) {
    if (auto b = r.get_size(v, "mirror.max_body"))
      m.max_body = *b;
    else
      ok = false;
  }
  if (!ok) return std::nullopt;
  return m;
}

namespace {
// A budget (retries', fallbacks'): {percent, min}, Envoy's retry budget.
bool parse_budget(const YAML::Node& b, yaml_reader& r, const std::string& what, std::uint32_t& per_10k,
                  std::uint32_t& min) {
  if (!r.expect_map(b, what)) return false;
  r.check_keys(b, what, {"percent", "min"});
  bool ok = true;
  if (auto v = b["percent"]) {
    auto p = percent_of(v, r, what + ".percent");
    if (p) per_10k = *p;
    ok = p.has_value();
  }
  if (auto v = b["min"]) {
    auto m = r.get_int(v, what + ".min", 0, 1'000'000);
    if (m) min = static_cast<std::uint32_t>(*m);
    ok = m.has_value() && ok;
  }
  return ok;
}

// A cluster name at n[key], noted in `refs` for the caller to check.
bool cluster_ref(const YAML::Node& n, const char* key, std::string_view what, yaml_reader& r, std::string& out,
                 std::vector<std::pair<std::string, YAML::Mark>>& refs) {
  if (!r.require(n, key, what)) return false;
  auto c = r.get_string(n[key], fmt::format("{}.{}", what, key));
  if (!c) return false;
  out = *c;
  refs.push_back({*c, n[key].Mark()});
  return true;
}

// The gRPC statuses retries.on and fallback.on may name (as Envoy's retry_on): their code.
std::optional<unsigned> resendable_grpc_code(std::string_view name) {
  if (name == "cancelled" || name == "deadline-exceeded" || name == "resource-exhausted" || name == "unavailable" ||
      name == "internal")
    return parse_grpc_code(name);
  return std::nullopt;
}

}  // namespace

std::optional<guard_config> parse_guard(const YAML::Node& n, yaml_reader& r,
                                        std::vector<std::pair<std::string, YAML::Mark>>& cluster_refs) {
  if (!r.expect_map(n, "route.guard")) return std::nullopt;
  r.check_keys(n, "guard", {"cluster", "max_error_percent", "min_requests", "window", "grpc_failure_codes"});
  guard_config g;
  bool ok = cluster_ref(n, "cluster", "guard", r, g.cluster, cluster_refs);
  if (auto v = n["max_error_percent"]) {
    auto p = percent_of(v, r, "guard.max_error_percent");
    if (p && *p == 0) r.error(v, "guard.max_error_percent must be more than 0");
    if (p && *p > 0)
      g.max_error_per_10k = *p;
    else
      ok = false;
  }
  if (auto v = n["min_requests"]) {
    if (auto m = r.get_int(v, "guard.min_requests", 1, 1'000'000))
      g.min_requests = static_cast<std::uint32_t>(*m);
    else
      ok = false;
  }
  if (auto v = n["window"]) {
    auto d = r.get_duration(v, "guard.window");
    if (d && (*d < std::chrono::milliseconds(100) || *d > std::chrono::minutes(10)))
      r.error(v, "guard.window must be from 100ms to 10m");
    if (d && *d >= std::chrono::milliseconds(100) && *d <= std::chrono::minutes(10))
      g.window = *d;
    else
      ok = false;
  }
  if (auto v = n["grpc_failure_codes"]) {
    if (r.expect_sequence(v, "guard.grpc_failure_codes")) {
      g.grpc_failures = 0;  // [] counts HTTP 5xx only
      for (const auto& e : v) {
        auto text = r.get_string(e, "guard.grpc_failure_codes");
        const auto code = text ? parse_grpc_code(*text) : std::nullopt;
        if (code) {
          g.grpc_failures |= 1U << *code;
        } else {
          if (text)
            r.error(e, fmt::format("guard.grpc_failure_codes: '{}' is not a gRPC status (a name such as "
                                   "UNAVAILABLE or deadline-exceeded, or a number 0-16)",
                                   *text));
          ok = false;
        }
      }
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return g;
}

std::optional<fallback_config> parse_fallback(const YAML::Node& n, yaml_reader& r,
                                              std::vector<std::pair<std::string, YAML::Mark>>& cluster_refs) {
  if (!r.expect_map(n, "route.fallback")) return std::nullopt;
  r.check_keys(n, "fallback", {"from", "to", "on", "max_body", "budget"});
  fallback_config f;
  bool ok = cluster_ref(n, "from", "fallback", r, f.from, cluster_refs);
  ok = cluster_ref(n, "to", "fallback", r, f.to, cluster_refs) && ok;
  if (ok && f.from == f.to) {
    r.error(n["to"], "fallback.to must differ from fallback.from");
    ok = false;
  }
  if (auto on = n["on"]) {
    if (r.expect_sequence(on, "fallback.on") && on.size() > 0) {
      f.on = fallback_on{false, false, false, false, 0};
      for (const auto& e : on) {
        auto cond = r.get_string(e, "fallback.on");
        if (!cond) {
          ok = false;
        } else if (*cond == "connect-failure") {
          f.on.connect_failure = true;
        } else if (*cond == "reset") {
          f.on.reset = true;
        } else if (*cond == "5xx") {
          f.on.status_5xx = true;
        } else if (*cond == "timeout") {
          f.on.timeout = true;
        } else if (const auto code = resendable_grpc_code(*cond)) {
          f.on.grpc |= 1U << *code;
        } else {
          r.error(e, fmt::format("fallback.on: unknown condition '{}' (connect-failure, reset, 5xx, timeout; gRPC: "
                                 "cancelled, deadline-exceeded, resource-exhausted, unavailable, internal)",
                                 *cond));
          ok = false;
        }
      }
    } else {
      if (on.IsSequence()) r.error(on, "fallback.on must name at least one condition");
      ok = false;
    }
  }
  if (auto v = n["max_body"]) {
    if (auto b = r.get_size(v, "fallback.max_body"))
      f.max_body = *b;
    else
      ok = false;
  }
  if (auto b = n["budget"]) ok = parse_budget(b, r, "fallback.budget", f.budget_per_10k, f.budget_min) && ok;
  if (!ok) return std::nullopt;
  return f;
}

std::optional<retries_config> parse_retries(const YAML::Node& n, yaml_reader& r) {
  if (!r.expect_map(n, "route.retries")) return std::nullopt;
  r.check_keys(n, "retries", {"attempts", "per_try_timeout", "on", "budget"});
  retries_config rc;
  bool ok = true;
  if (auto v = n["attempts"]) {
    if (auto a = r.get_int(v, "retries.attempts", 0, 10))
      rc.attempts = static_cast<std::uint32_t>(*a);
    else
      ok = false;
  }
  if (auto v = n["per_try_timeout"]) {
    if (auto d = r.get_duration(v, "retries.per_try_timeout"); d && d->count() > 0)
      rc.per_try_timeout = *d;
    else {
      if (d) r.error(v, "retries.per_try_timeout must be positive");
      ok = false;
    }
  }
  if (auto on = n["on"]) {
    if (r.expect_sequence(on, "retries.on")) {
      rc.on = retry_on{false, false, false, false};
      for (const auto& e : on) {
        auto cond = r.get_string(e, "retries.on");
        if (!cond) {
          ok = false;
        } else if (*cond == "connect-failure") {
          rc.on.connect_failure = true;
        } else if (*cond == "reset") {
          rc.on.reset = true;
        } else if (*cond == "5xx") {
          rc.on.status_5xx = true;
        } else if (*cond == "gateway-error") {
          rc.on.gateway_error = true;
        } else if (const auto code = resendable_grpc_code(*cond)) {
          rc.on.grpc |= 1U << *code;
        } else {
          r.error(e, fmt::format("retries.on: unknown condition '{}' (connect-failure, reset, 5xx, gateway-error; "
                                 "gRPC: cancelled, deadline-exceeded, resource-exhausted, unavailable, internal)",
                                 *cond));
          ok = false;
        }
      }
    } else {
      ok = false;
    }
  }
  if (auto b = n["budget"]) ok = parse_budget(b, r, "retries.budget", rc.budget_per_10k, rc.budget_min) && ok;
  if (!ok) return std::nullopt;
  return rc;
}

std::optional<session_affinity_config> parse_session_affinity(const YAML::Node& n, yaml_reader& r) {
  if (!r.expect_map(n, "route.session_affinity")) return std::nullopt;
  r.check_keys(n, "session_affinity", {"cookie", "primary_cookie", "max_age", "value"});
  session_affinity_config a;
  std::set<std::string_view> unread;  // keys the reader refused (and said so): not checked again
  if (!n["cookie"]) {
    r.require(n, "cookie", "session_affinity");
    unread.insert("cookie");
  }
  for (auto [key, target] : {std::pair{std::string_view("cookie"), &a.cookie},
                             std::pair{std::string_view("primary_cookie"), &a.primary_cookie},
                             std::pair{std::string_view("value"), &a.value}}) {
    if (auto v = n[std::string(key)]) {
      if (auto s = r.get_string(v, fmt::format("session_affinity.{}", key)))
        *target = *s;
      else
        unread.insert(key);
    }
  }
  if (auto v = n["max_age"]) {
    if (auto d = r.get_duration(v, "session_affinity.max_age"))
      a.max_age = *d;
    else
      unread.insert("max_age");
  }
  bool ok = unread.empty();
  for (const auto& e : check_session_affinity(a)) {
    if (unread.count(e.field)) continue;
    r.error(node_of(n, e.field), e.message);
    ok = false;
  }
  if (!ok) return std::nullopt;
  return a;
}

namespace {

// Fields the proxy writes itself: Content-Length, Host and the hop-by-hop
// ones (always_hop_by_hop, which it never passes on). A rewrite of them would
// let a config frame a body differently from the head (a smuggled request),
// or contradict what vane sends. A request's Host may be set
// (`host_may_be_set`): it replaces the received one, as nginx's
// proxy_set_header Host.
bool proxy_owned_field(const std::string& name, bool host_may_be_set) {
  namespace http = boost::beast::http;
  const http::field id = http::string_to_field(name);  // (case-insensitive)
  if (id == http::field::host) return !host_may_be_set;
  return id == http::field::content_length || always_hop_by_hop(id);
}

}  // namespace

header_ops parse_header_ops(const YAML::Node& n, yaml_reader& r, std::string_view what) {
  header_ops ops;
  if (!r.expect_map(n, what)) return ops;
  r.check_keys(n, what, {"set", "add", "remove"});
  for (auto [key, target] : {std::pair{"set", &ops.set}, std::pair{"add", &ops.add}}) {
    auto m = n[key];
    if (!m || !r.expect_map(m, fmt::format("{}.{}", what, key))) continue;
    for (const auto& e : m) {
      std::string name = e.first.as<std::string>();
      auto value = r.get_string(e.second, fmt::format("{}.{}.{}", what, key, name));
      if (!is_token(name)) {
        r.error(e.first, fmt::format("{}.{}: '{}' is not a valid header name", what, key, name));
      } else if (proxy_owned_field(name, what == "request_headers" && key == std::string_view("set"))) {
        r.error(e.first,
                fmt::format("{}.{}: '{}' is written by the proxy itself and cannot be rewritten", what, key, name));
      } else if (value && !header_value_ok(*value)) {
        r.error(e.second,
                fmt::format("{}.{}.{}: control characters are not allowed in a header value", what, key, name));
      } else if (value) {
        target->emplace_back(lower(name), *value);
      }
    }
  }
  if (auto rm = n["remove"]; rm && r.expect_sequence(rm, fmt::format("{}.remove", what))) {
    for (const auto& e : rm) {
      auto name = r.get_string(e, fmt::format("{}.remove", what));
      if (!name) continue;
      if (!is_token(*name))
        r.error(e, fmt::format("{}.remove: '{}' is not a valid header name", what, *name));
      else if (proxy_owned_field(*name, false))
        r.error(e, fmt::format("{}.remove: '{}' is written by the proxy itself and cannot be removed", what, *name));
      else
        ops.remove.push_back(lower(*name));
    }
  }
  return ops;
}

std::optional<proxy_config> parse_proxy_config(const std::string& text, const std::string& file_name,
                                               std::vector<config_error>& errors) {
  yaml_reader reader(file_name);
  YAML::Node root = reader.parse(text);
  std::optional<proxy_config> cfg;
  if (reader.ok()) cfg = config_parser(reader).parse(root, file_name);
  errors = reader.errors();
  // Reported in file order, whatever order the checks ran in.
  std::stable_sort(errors.begin(), errors.end(), [](const config_error& a, const config_error& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  if (!errors.empty()) return std::nullopt;
  return cfg;
}

std::optional<proxy_config> load_proxy_config(const std::string& path, std::vector<config_error>& errors) {
  std::string message;
  auto text = read_file(path, message);
  if (!text) {
    errors = {config_error{path, 1, 1, message}};
    return std::nullopt;
  }
  return parse_proxy_config(*text, path, errors);
}

}  // namespace vane::proxy
