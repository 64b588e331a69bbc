#include <gtest/gtest.h>

#include "proxy/config_load.hpp"

using namespace vane;
using namespace vane::proxy;

namespace {
std::vector<config_error> errors_of(const std::string& yaml) {
  std::vector<config_error> errors;
  auto cfg = parse_proxy_config(yaml, "test.yaml", errors);
  EXPECT_FALSE(cfg) << "expected errors for:\n" << yaml;
  return errors;
}

std::string all(const std::vector<config_error>& errors) {
  std::string s;
  for (const auto& e : errors) s += e.to_string() + "\n";
  return s;
}

const char* valid = R"(limits: {max_body: 1MiB, header_timeout: 5s, max_headers: 50}
listeners:
  - name: http
    address: 127.0.0.1:8080
    forwarded: {trust_incoming: true}
    routes:
      - name: api
        match: {host: "*.example.com", path_regex: "/api/v[0-9]+/.*"}
        split:
          - {cluster: primary, weight: 90}
          - {cluster: canary, weight: 10}
        timeout: 2s
      - name: rest
        split: [{cluster: primary, weight: 1}]
clusters:
  - name: primary
    endpoints: [127.0.0.1:9898, "[::1]:9899"]
    connect_timeout: 250ms
    max_connections: 8
    max_pending: 0
  - name: canary
    endpoints: [localhost:9900]
)";
}  // namespace

TEST(Config, ParsesAValidConfig) {
  std::vector<config_error> errors;
  auto cfg = parse_proxy_config(valid, "test.yaml", errors);
  ASSERT_TRUE(cfg) << all(errors);
  EXPECT_EQ(cfg->limits.max_body, 1u << 20);
  EXPECT_EQ(cfg->limits.header_timeout, std::chrono::seconds(5));
  EXPECT_EQ(cfg->limits.max_headers, 50u);
  EXPECT_EQ(cfg->limits.idle_timeout, std::chrono::seconds(60));  // default
  ASSERT_EQ(cfg->listeners.size(), 1u);
  const auto& l = cfg->listeners[0];
  EXPECT_TRUE(l.trust_forwarded);
  ASSERT_EQ(l.routes.size(), 2u);
  EXPECT_EQ(l.routes[0].host, "*.example.com");
  EXPECT_EQ(l.routes[0].path_kind, path_match_kind::regex);
  EXPECT_EQ(l.routes[0].split[1].cluster, "canary");
  EXPECT_EQ(l.routes[0].split[1].weight, 10u);
  EXPECT_EQ(l.routes[0].timeout, std::chrono::seconds(2));
  EXPECT_EQ(l.routes[1].timeout, std::chrono::seconds(15));  // default
  ASSERT_EQ(cfg->clusters.size(), 2u);
  EXPECT_EQ(cfg->clusters[0].endpoints[1].host, "::1");
  EXPECT_EQ(cfg->clusters[0].max_pending, 0u);
  EXPECT_EQ(cfg->clusters[1].max_connections, 1024u);
}

TEST(Config, SyntaxErrorHasPosition) {
  auto errors = errors_of("listeners:\n  - name: [unclosed\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].file, "test.yaml");
  EXPECT_GE(errors[0].line, 2);
}

TEST(Config, ReportsEveryErrorWithLineAndColumn) {
  auto errors = errors_of(R"(listeners:
  - name: http
    address: nowhere
    colour: blue
    routes:
      - name: r
        split:
          - {cluster: ghost, weight: -1}
        timeout: soon
clusters:
  - name: c
    endpoints: [127.0.0.1:80]
    max_connections: many
)");
  std::string text = all(errors);
  EXPECT_NE(text.find("test.yaml:3:14: listener.address: 'nowhere' is not HOST:PORT"), std::string::npos) << text;
  EXPECT_NE(text.find("test.yaml:4:5: listener: unknown key 'colour'"), std::string::npos) << text;
  EXPECT_NE(text.find("test.yaml:8:38: split: weight of 'ghost' must be an integer from 0 to 1000000"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("test.yaml:9:18: route.timeout: 'soon' is not a duration"), std::string::npos) << text;
  EXPECT_NE(text.find("test.yaml:13:22: cluster.max_connections must be an integer"), std::string::npos) << text;
  EXPECT_NE(text.find("test.yaml:8:23: split names unknown cluster 'ghost'"), std::string::npos) << text;
  EXPECT_EQ(errors.size(), 6u) << text;
}

TEST(Config, TlsKeysAreCheckedWithTheirPlace) {
  auto errors = errors_of(R"(listeners:
  - name: a
    address: 127.0.0.1:0
    tls: {certificate: a.crt, private_key: a.key, certificates: []}
    routes: [{name: r1, split: [{cluster: c, weight: 1}]}]
  - name: b
    address: 127.0.0.1:0
    tls: {certificates: [{certificate: b.crt, private_key: b.key, server_names: ["a b", "*.ok.test", "x.*.test"]}], require_client_certificate: true}
    routes: [{name: r2, split: [{cluster: c, weight: 1}]}]
  - name: c
    address: 127.0.0.1:0
    tls: {handshake_timeout: 1s}
    routes: [{name: r3, split: [{cluster: c, weight: 1}]}]
clusters:
  - name: c
    endpoints: [127.0.0.1:80]
    tls: {sni: c, verify: maybe, certificate: c.crt, alpn: h2}
)");
  std::string text = all(errors);
  EXPECT_NE(text.find("test.yaml:4:10: listener.tls: give either certificate/private_key or certificates, not both"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("server_names: 'a b' is not a host name or *.suffix"), std::string::npos) << text;
  EXPECT_NE(text.find("server_names: 'x.*.test' is not a host name or *.suffix"), std::string::npos) << text;
  EXPECT_EQ(text.find("'*.ok.test'"), std::string::npos) << text;
  EXPECT_NE(text.find("listener.tls.require_client_certificate needs client_ca"), std::string::npos) << text;
  EXPECT_NE(text.find("test.yaml:12:10: listener.tls needs certificate and private_key (or certificates)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("cluster.tls: unknown key 'alpn'"), std::string::npos) << text;
  EXPECT_NE(text.find("cluster.tls.verify"), std::string::npos) << text;
  EXPECT_NE(text.find("cluster.tls: missing required key 'private_key'"), std::string::npos) << text;
}

TEST(Config, AdminOffLoopbackNeedsAToken) {
  auto errors = errors_of(R"(admin: {address: 0.0.0.0:9901}
listeners:
  - name: http
    address: 127.0.0.1:0
    routes: [{name: r, split: [{cluster: c, weight: 1}]}]
clusters: [{name: c, endpoints: [127.0.0.1:80]}]
)");
  ASSERT_EQ(errors.size(), 1u) << all(errors);
  EXPECT_EQ(errors[0].to_string(),
            "test.yaml:1:8: admin.token_file is required when admin.address (0.0.0.0:9901) is not loopback");
  errors = errors_of(R"(admin: {address: 127.0.0.1:9901, token_file: /nonexistent/token}
drain_delay: 0s
drain_timeout: forever
listeners: []
clusters: []
)");
  std::string text = all(errors);
  EXPECT_NE(text.find("test.yaml:1:46: admin.token_file: /nonexistent/token: cannot open"), std::string::npos) << text;
  EXPECT_NE(text.find("test.yaml:3:16: drain_timeout: 'forever' is not a duration"), std::string::npos) << text;
}

TEST(Config, HealthChecks) {
  std::vector<config_error> errors;
  auto cfg = parse_proxy_config(
      R"(listeners: [{name: l, address: 127.0.0.1:0, routes: [{name: r, split: [{cluster: c, weight: 1}]}]}]
clusters:
  - name: c
    endpoints: [127.0.0.1:80]
    health_check: {path: /healthz, interval: 250ms, unhealthy: 3}
    dns_refresh_rate: 1s
)",
      "test.yaml", errors);
  ASSERT_TRUE(cfg) << all(errors);
  ASSERT_TRUE(cfg->clusters[0].health_check);
  EXPECT_EQ(cfg->clusters[0].health_check->path, "/healthz");
  EXPECT_EQ(cfg->clusters[0].health_check->interval, std::chrono::milliseconds(250));
  EXPECT_EQ(cfg->clusters[0].health_check->unhealthy, 3u);
  EXPECT_EQ(cfg->clusters[0].health_check->healthy, 2u);
  EXPECT_EQ(cfg->clusters[0].dns_refresh_rate, std::chrono::seconds(1));
  errors =
      errors_of(R"(listeners: [{name: l, address: 127.0.0.1:0, routes: [{name: r, split: [{cluster: c, weight: 1}]}]}]
clusters:
  - name: c
    endpoints: [127.0.0.1:80]
    health_check: {path: healthz, healthy: 0, timeout: 1s}
)");
  std::string text = all(errors);
  EXPECT_NE(text.find("test.yaml:5:26: health_check.path must start with '/'"), std::string::npos) << text;
  EXPECT_NE(text.find("test.yaml:5:44: health_check.healthy must be between 1 and 100, got 0"), std::string::npos)
      << text;
  EXPECT_NE(text.find("test.yaml:5:47: health_check: unknown key 'timeout'"), std::string::npos) << text;
}

TEST(Config, WeightsMustNotAllBeZero) {
  auto errors = errors_of(R"(listeners:
  - name: http
    address: 127.0.0.1:0
    routes:
      - name: r
        split: [{cluster: a, weight: 0}, {cluster: b, weight: 0}]
clusters:
  - {name: a, endpoints: [127.0.0.1:80]}
  - {name: b, endpoints: [127.0.0.1:81]}
)");
  ASSERT_EQ(errors.size(), 1u) << all(errors);
  EXPECT_EQ(errors[0].to_string(),
            "test.yaml:6:16: route.split: the weights add up to 0; at least one must be positive");
}

TEST(Config, DuplicatesAndBadRegex) {
  auto errors = errors_of(R"(listeners:
  - name: http
    address: 127.0.0.1:8080
    routes:
      - name: r
        match: {path_regex: "(unclosed", host: "a.*.com"}
        split: [{cluster: a, weight: 1}, {cluster: a, weight: 2}]
  - name: http
    address: 127.0.0.1:8080
    routes:
      - name: r
        match: {path_prefix: api}
        split: [{cluster: a, weight: 1}]
clusters:
  - {name: a, endpoints: [127.0.0.1:80]}
  - {name: a, endpoints: [127.0.0.1:0]}
)");
  std::string text = all(errors);
  for (const char* expected :
       {"test.yaml:6:29: match.path_regex: invalid RE2 regex: missing ): (unclosed",
        "test.yaml:6:48: match.host 'a.*.com': a wildcard is only allowed as a leading '*.'",
        "test.yaml:7:52: split names cluster 'a' twice", "test.yaml:8:11: listener name 'http' is used twice",
        "test.yaml:9:14: listener address 127.0.0.1:8080 is used twice",
        "test.yaml:11:15: route name 'r' is used twice", "test.yaml:12:30: match.path_prefix must start with '/'",
        "test.yaml:16:12: cluster name 'a' is used twice", "test.yaml:16:27: endpoint port must not be 0"})
    EXPECT_NE(text.find(expected), std::string::npos) << "missing: " << expected << "\nin:\n" << text;
}

TEST(Config, ARouteCannotBeNamedAsTheUnroutedRequests) {
  auto errors = errors_of(R"(listeners:
  - name: http
    address: 127.0.0.1:8080
    routes:
      - name: none
        split: [{cluster: a, weight: 1}]
clusters:
  - {name: a, endpoints: [127.0.0.1:80]}
)");
  ASSERT_EQ(errors.size(), 1u) << all(errors);
  EXPECT_EQ(errors[0].to_string(),
            "test.yaml:5:15: route name 'none' is taken: the metrics count requests no route matched as route "
            "\"none\"");
}

TEST(Config, MissingSectionsAndEmptyFile) {
  auto errors = errors_of("");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("empty"), std::string::npos);
  errors = errors_of("limits: {}\n");
  std::string text = all(errors);
  EXPECT_NE(text.find("missing required key 'clusters'"), std::string::npos) << text;
  EXPECT_NE(text.find("missing required key 'listeners'"), std::string::npos) << text;
  errors = errors_of("- a\n- b\n");
  EXPECT_EQ(all(errors), "test.yaml:1:1: the config must be a mapping\n");
}

TEST(Config, LimitsAreChecked) {
  auto errors = errors_of(R"(limits: {max_request_headers: 10, max_body: 1TB, idle_timeout: 0s, header_timeout: 1}
listeners: []
clusters: []
)");
  std::string text = all(errors);
  EXPECT_NE(text.find("limits.max_request_headers must be between 1KiB and 1MiB"), std::string::npos) << text;
  EXPECT_NE(text.find("limits.max_body: '1TB' is not a size"), std::string::npos) << text;
  EXPECT_NE(text.find("limits.idle_timeout must be greater than 0"), std::string::npos) << text;
  EXPECT_NE(text.find("limits.header_timeout: '1' is not a duration"), std::string::npos) << text;
  EXPECT_NE(text.find("listeners must name at least one listener"), std::string::npos) << text;
}

// Header rewriting may not touch what the proxy writes itself: a config that
// removed Content-Length, or set Transfer-Encoding, would frame a body
// differently from its head (a request smuggled to the upstream).
TEST(Config, HeaderRewritesOfFramingAndHopByHopFieldsAreRefusedWithTheirPlace) {
  auto errors = errors_of(R"(listeners:
  - name: l
    address: 127.0.0.1:0
    routes:
      - name: r
        split: [{cluster: c, weight: 1}]
        request_headers: {remove: [Content-Length], set: {transfer-encoding: chunked}, add: {x-ok: "1"}}
        response_headers: {add: {Connection: close}, set: {host: h}}
clusters:
  - {name: c, endpoints: ["127.0.0.1:1"]}
)");
  std::string text = all(errors);
  EXPECT_NE(text.find("test.yaml:7:36: request_headers.remove: 'Content-Length' is written by the proxy itself"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("test.yaml:7:59: request_headers.set: 'transfer-encoding' is written by the proxy itself"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("response_headers.add: 'Connection' is written by the proxy itself"), std::string::npos) << text;
  EXPECT_NE(text.find("response_headers.set: 'host' is written by the proxy itself"), std::string::npos) << text;
  EXPECT_EQ(text.find("x-ok"), std::string::npos) << text;
  // A request's Host may be set (it replaces the received one); not added or removed.
  errors.clear();
  const auto cfg = parse_proxy_config(R"(listeners:
  - name: l
    address: 127.0.0.1:0
    routes:
      - name: r
        split: [{cluster: c, weight: 1}]
        request_headers: {set: {Host: upstream.internal}}
clusters:
  - {name: c, endpoints: ["127.0.0.1:1"]}
)",
                                      "test.yaml", errors);
  EXPECT_TRUE(cfg) << all(errors);
}
