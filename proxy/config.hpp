#pragma once
// vane-proxy's configuration: the schema of DESIGN.md as plain structs, with
// no YAML in sight, so that the request path (the route table, the codec, the
// workers) can include it. Reading it from YAML is proxy/config_load.hpp's;
// the checks of a route's policy are proxy/route_policy.hpp's.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/address.hpp"
#include "common/grpc.hpp"
#include "common/units.hpp"
#include "filters/decision/decision.hpp"
#include "filters/fallback/fallback.hpp"
#include "filters/fault/fault.hpp"
#include "filters/rules/rules.hpp"
#include "proxy/tls_config.hpp"

namespace vane::proxy {

struct limits_config {
  std::uint64_t max_request_headers = 64 * 1024;  // bytes of request line + header block
  std::uint32_t max_headers = 100;
  std::uint64_t max_body = 16 * 1024 * 1024;
  duration header_timeout = std::chrono::seconds(10);  // to read a whole request head
  duration idle_timeout = std::chrono::seconds(60);    // keep-alive idle, and per read/write of a body
  std::uint64_t max_request_target = 8 * 1024;         // longer -> 414 (nginx: 8k)
  std::uint64_t max_header_field = 8 * 1024;           // one field's name + value; longer -> 431 (nginx: 8k a line)
  std::uint32_t max_requests_per_connection = 1000;    // then Connection: close (nginx's keepalive_requests); 0: none
  std::uint32_t max_connections = 20000;               // per listener per worker; more are closed at accept
  std::uint32_t max_in_flight = 10000;                 // requests being proxied per worker; more -> 503
  // HTTP/2 downstream (Envoy's edge defaults).
  struct h2_limits {
    std::uint32_t max_concurrent_streams = 100;
    std::uint32_t initial_stream_window = 64 * 1024;
    std::uint32_t initial_connection_window = 1024 * 1024;
    std::uint32_t max_header_list = 64 * 1024;  // decoded header block (RFC 7541 sizes), trailers included
    bool operator==(const h2_limits&) const = default;
  } h2;
};

struct split_entry {
  std::string cluster;
  std::uint32_t weight = 0;
  bool operator==(const split_entry&) const = default;
};

enum class path_match_kind { any, prefix, exact, regex };

// One condition of an A/B rule, as written (compiled in the route table).
struct match_spec {
  match_source source = match_source::header;
  std::string name;  // header names in lower case
  string_match_kind kind = string_match_kind::exact;
  std::string value;
  bool operator==(const match_spec&) const = default;
};

struct rule_config {
  std::vector<std::vector<match_spec>> any;  // alternatives (OR) of conditions (AND)
  std::string cluster;
  bool operator==(const rule_config&) const = default;
};

// request_headers / response_headers: removed first, then set (replacing),
// then added (appended). Names in lower case.
struct header_ops {
  std::vector<std::pair<std::string, std::string>> set;
  std::vector<std::pair<std::string, std::string>> add;
  std::vector<std::string> remove;
  bool empty() const { return set.empty() && add.empty() && remove.empty(); }
  bool operator==(const header_ops&) const = default;
};

// Flagger's sessionAffinity: the canary is the split's last cluster, the
// primary its first. `value` identifies the analysis run (vane-control sets a
// fresh one per run through the traffic API); "" = derived from the route.
struct session_affinity_config {
  std::string cookie;
  std::string primary_cookie;  // "" = clients sent to the primary are not pinned
  duration max_age = std::chrono::hours(24);
  std::string value;
  bool operator==(const session_affinity_config&) const = default;
};

// Retries (Istio's `attempts` = retries after the first try).
struct retries_config {
  std::uint32_t attempts = 1;
  std::optional<duration> per_try_timeout;  // for the response head of each try; default: the route's timeout
  retry_on on;                              // default: connect-failure, reset
  std::uint32_t budget_per_10k = 2000;      // 20%
  std::uint32_t budget_min = 3;
  bool operator==(const retries_config&) const = default;
};

// Mirroring: a copy of `percent` of the route's requests (exact shares) to
// `cluster`, fire-and-forget; bodies over max_body are not copied.
struct mirror_config {
  std::string cluster;
  std::uint32_t per_10k = 10000;
  std::uint64_t max_body = 64 * 1024;
  bool operator==(const mirror_config&) const = default;
};

// The proxy guard (docs/configuration.md): on each worker, the attempts to
// `cluster` over the last `window`; once at least min_requests of them and
// max_error_percent of them failed (5xx, connect failure, reset, timeout),
// the process sends the cluster no new request until a traffic PUT resets it.
struct guard_config {
  std::string cluster;
  std::uint32_t max_error_per_10k = 2000;
  std::uint32_t min_requests = 20;
  duration window = std::chrono::seconds(1);
  // A gRPC call answered with one of these statuses (a bit per code) is a
  // failure too; a 5xx always is.
  std::uint32_t grpc_failures = grpc_default_failures;
  bool operator==(const guard_config&) const = default;
};

// Canary fallback: a failed attempt on `from` (a cause in `on`) of a request
// safe to send again is sent once to `to`, within a budget like the retries'.
struct fallback_config {
  std::string from, to;
  fallback_on on;
  std::uint64_t max_body = 64 * 1024;   // a request body is kept (to be sent again) up to this size
  std::uint32_t budget_per_10k = 2500;  // fallbacks and retries in flight to `to`, per worker
  std::uint32_t budget_min = 3;
  bool operator==(const fallback_config&) const = default;
};

struct hash_on_config {
  hash_kind kind = hash_kind::header;
  std::string name;  // header (lower case) or cookie name
  bool operator==(const hash_on_config&) const = default;
};

struct route_config {
  std::string name;
  std::string host;  // "" = any
  path_match_kind path_kind = path_match_kind::any;
  std::string path;
  std::vector<split_entry> split;
  std::vector<rule_config> rules;
  std::optional<hash_on_config> hash_on;
  std::optional<fault_config> fault;
  std::optional<session_affinity_config> session_affinity;
  std::optional<retries_config> retries;
  std::optional<mirror_config> mirror;
  std::optional<guard_config> guard;
  std::optional<fallback_config> fallback;
  header_ops request_headers;
  header_ops response_headers;
  duration timeout = std::chrono::seconds(15);  // for the upstream to start its response
};

struct listener_config {
  std::string name;
  host_port address;
  bool http1 = true, h2 = true;  // protocols: [http1, h2] (h2: ALPN over TLS, prior knowledge over plain TCP)
  bool trust_forwarded = false;
  std::optional<listener_tls_config> tls;  // terminates TLS when set
  std::vector<route_config> routes;
};

struct health_check_config {
  std::string path;                             // GET PATH; a 2xx answer passes
  std::optional<std::string> grpc_service;      // grpc: {service}: grpc.health.v1.Health/Check, SERVING passes
  duration interval = std::chrono::seconds(5);  // also the timeout of one check
  std::uint32_t unhealthy = 2;                  // consecutive failures that mark an endpoint down
  std::uint32_t healthy = 2;                    // consecutive passes that mark it up again
  bool operator==(const health_check_config&) const = default;
};

// What a cluster's endpoints speak: HTTP/1.1, or HTTP/2 (ALPN "h2" over TLS,
// prior knowledge over plain TCP). gRPC needs h2.
enum class upstream_protocol { http1, h2 };

struct cluster_config {
  std::string name;
  upstream_protocol protocol = upstream_protocol::http1;
  std::vector<host_port> endpoints;
  std::optional<health_check_config> health_check;
  duration dns_refresh_rate = std::chrono::seconds(5);  // for endpoints given as DNS names
  duration connect_timeout = std::chrono::seconds(1);
  std::uint32_t max_connections = 1024;   // per worker
  std::uint32_t max_pending = 1024;       // per worker
  std::optional<fault_config> fault;      // injected as if the cluster answered
  std::optional<cluster_tls_config> tls;  // TLS to the endpoints when set
};

struct admin_config {
  host_port address{"127.0.0.1", 9901};
  std::string token_file;  // "" = no token (only allowed on loopback)
  std::string token;       // read from token_file at load, trailing whitespace removed
};

struct proxy_config {
  std::string file;
  admin_config admin;
  duration drain_delay = std::chrono::seconds(5);
  duration drain_timeout = std::chrono::seconds(30);
  limits_config limits;
  std::vector<listener_config> listeners;
  std::vector<cluster_config> clusters;

  const cluster_config* find_cluster(std::string_view name) const;
  // Position of the named cluster in `clusters`, or nullopt.
  std::optional<std::size_t> cluster_index(std::string_view name) const;
};

}  // namespace vane::proxy
