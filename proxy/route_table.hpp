#pragma once
// The route table: an immutable snapshot built from a validated config, shared
// read-only by every worker (std::shared_ptr<const route_table>). It holds what
// the request path needs — compiled routes, listeners, clusters, limits — and
// not the parsed config (the runtime keeps that beside it). A route's policy is
// compiled by proxy/route_policy.hpp's functions, the loader's and the traffic
// PUT's checks.
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "filters/decision/decision.hpp"
#include "filters/route_match/route_match.hpp"
#include "filters/rules/rules.hpp"
#include "proxy/config.hpp"
#include "proxy/guard_state.hpp"

namespace vane::proxy {

class server_tls;
class client_tls;
class tls_cache;

struct compiled_mirror {
  std::size_t target = 0;  // position in compiled_route::clusters
  std::uint32_t per_10k = 10000;
  std::uint64_t max_body = 0;
};

// The route's guard: which split target it watches, its rule, the state the
// process shares, and the decision to use while it is tripped.
struct compiled_guard {
  std::size_t target = 0;
  guard_rule rule;
  std::uint32_t grpc_failures = 0;  // the gRPC statuses that count as failures (guard_config's)
  std::shared_ptr<guard_state> state;
  route_decision decision;  // route_decision::without(target)
};

// The route's fallback, as split targets.
struct compiled_fallback {
  std::size_t from = 0, to = 0;
  fallback_config config;
};

struct compiled_route {
  std::string name;
  std::size_t index = 0;  // in route_table::route_count order, for per-worker state
  host_matcher host;
  path_matcher path;
  // Which target gets a request (filters/decision): the split's weights,
  // rules, affinity, hashing. Targets index `clusters`.
  route_decision decision;
  // Index into route_table::clusters: the split's, in split order, then those
  // that only rules or the mirror name.
  std::vector<std::size_t> clusters;
  std::optional<fault_config> fault;
  std::optional<retries_config> retries;
  std::optional<compiled_mirror> mirror;
  std::optional<compiled_guard> guard;
  std::optional<compiled_fallback> fallback;
  header_ops request_headers;
  header_ops response_headers;
  duration timeout{};
};

struct compiled_listener {
  std::string name;
  host_port address;
  bool http1 = true, h2 = true;  // the protocols it speaks
  bool trust_forwarded = false;
  std::shared_ptr<const server_tls> tls;  // set: the listener terminates TLS
  std::vector<compiled_route> routes;
};

struct cluster_target {
  std::string name;
  upstream_protocol protocol = upstream_protocol::http1;
  std::vector<host_port> configured;  // the endpoints as written, to reuse `endpoints` while they stay the same
  std::vector<boost::asio::ip::tcp::endpoint> endpoints;
  // Per endpoint, 1 when it may take traffic (health checks); shared, immutable.
  std::shared_ptr<const std::vector<char>> healthy;
  duration connect_timeout{};
  std::uint32_t max_connections = 0;
  std::uint32_t max_pending = 0;
  std::optional<fault_config> fault;
  std::shared_ptr<const client_tls> tls;  // set: connections to the endpoints speak TLS
  std::string tls_host;                   // the name (or IP) sent as SNI and verified
  // The Host sent upstream for an HTTP/1.0 request that had none: the first
  // endpoint as written in the config, "host:port" (as nginx's $proxy_host).
  std::string authority;
};

struct route_table {
  std::uint64_t generation = 0;
  limits_config limits;
  std::vector<compiled_listener> listeners;
  std::vector<cluster_target> clusters;
  std::size_t route_count = 0;

  // Index of the named listener, or listeners.size() when the table has none by that name.
  std::size_t find_listener(std::string_view name) const;
  // The named cluster, or nullptr.
  const cluster_target* find_cluster(std::string_view name) const;
  // First route of the listener whose host and path match, or nullptr.
  const compiled_route* match(std::size_t listener, std::string_view host_header, std::string_view path) const;
};

// Health of resolved endpoints, by cluster name and "IP:PORT"; an endpoint not listed is healthy.
using health_map = std::map<std::string, std::map<std::string, bool>, std::less<>>;
// Resolved addresses of clusters, by cluster name (from the DNS refresher).
using resolved_map = std::map<std::string, std::vector<boost::asio::ip::tcp::endpoint>, std::less<>>;

// Names looked up beforehand (a reload resolves the names of its new clusters
// on the resolver's thread, not the control thread), by "HOST:PORT": the
// addresses, or the lookup's error.
struct name_lookup {
  std::vector<boost::asio::ip::tcp::endpoint> addresses;
  std::string error;
};
using lookup_map = std::map<std::string, name_lookup, std::less<>>;

struct table_inputs {
  const route_table* previous = nullptr;  // its resolved addresses are reused for unchanged clusters
  const health_map* health = nullptr;
  const resolved_map* resolved = nullptr;  // takes precedence over `previous`
  tls_cache* tls = nullptr;                // TLS contexts to share; none: built for this table
  guard_registry* guards = nullptr;        // guard states to share; none: fresh ones
  const lookup_map* lookups = nullptr;     // for the other clusters' names; a name not in it is resolved here
};

// Builds the snapshot. Endpoints given as DNS names are resolved here unless
// `inputs` already has their addresses; returns nullptr with `error` set when
// a name does not resolve (or a route's policy does not hold: not for a
// config the loader and the traffic PUT have checked).
std::shared_ptr<const route_table> build_route_table(const proxy_config& config, std::uint64_t generation,
                                                     const table_inputs& inputs, std::string& error);
std::string endpoint_key(const boost::asio::ip::tcp::endpoint& ep);

}  // namespace vane::proxy
