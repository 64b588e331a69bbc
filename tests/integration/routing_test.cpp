// A/B rules and sticky hashing through the real binary: YAML and the traffic API.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>

#include "tests/support/fixtures.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/scripted_http.hpp"

using namespace vane::test;
namespace json = boost::json;

namespace {

std::string ab_config(const demo_instance& p, const demo_instance& c, const std::string& route_extra) {
  return half_split_config(p.address(), c.address(), route_extra);
}

std::string version_of(std::uint16_t port, const std::vector<std::pair<std::string, std::string>>& headers,
                       const std::string& target = "/") {
  auto r = fetch(port, "GET", target, headers);
  EXPECT_EQ(r.status, 200);
  return r.header("x-version");
}

}  // namespace

TEST(Rules, HeaderCookieAndQueryRulesPickTheCanaryElseTheSplit) {
  auto p = start_demo("primary");
  auto c = start_demo("canary");
  auto proxy = start_proxy(ab_config(p, c, R"(        rules:
          - match:
              - headers: {x-canary: {exact: insider}}
              - cookies: {canary: {exact: always}}
              - query: {variant: {exact: b}}
              - headers: {cookie: {regex: "^(.*?;)?(flagger=always)(;.*)?$"}}
            cluster: app-canary
          - match:
              - headers: {user-agent: {prefix: "Pinned/"}, x-team: {present: true}}
            cluster: app-primary
)"),
                           1);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(version_of(proxy.port, {{"X-Canary", "insider"}}), "canary");
    EXPECT_EQ(version_of(proxy.port, {{"cookie", "a=1; canary=always"}}), "canary");
    EXPECT_EQ(version_of(proxy.port, {}, "/x?variant=b"), "canary");
    EXPECT_EQ(version_of(proxy.port, {{"cookie", "flagger=always; a=1"}}), "canary");
    // Both conditions of the second rule (AND):
    EXPECT_EQ(version_of(proxy.port, {{"user-agent", "Pinned/1"}, {"x-team", ""}}), "primary");
  }
  // No rule holds: the split (50/50, interleaved) decides.
  std::map<std::string, int> seen;
  http_client client(proxy.port);
  for (int i = 0; i < 20; ++i) seen[client.request("GET", "/", {{"x-canary", "outsider"}}).header("x-version")]++;
  EXPECT_EQ(seen["primary"], 10);
  EXPECT_EQ(seen["canary"], 10);
}

TEST(Rules, StickyHashKeepsEachUserOnOneCluster) {
  auto p = start_demo("primary");
  auto c = start_demo("canary");
  auto proxy = start_proxy(ab_config(p, c, "        hash_on: {header: x-user-id}\n"), 2);
  std::map<std::string, int> users_on;
  for (int u = 0; u < 100; ++u) {
    std::string user = "user-" + std::to_string(u);
    std::string first = version_of(proxy.port, {{"x-user-id", user}});
    for (int i = 0; i < 5; ++i) ASSERT_EQ(version_of(proxy.port, {{"x-user-id", user}}), first) << user;
    users_on[first]++;
  }
  // The fixed hash puts these 100 users on both sides (exact counts are pinned by the unit tests).
  EXPECT_GT(users_on["primary"], 25);
  EXPECT_GT(users_on["canary"], 25);
}

TEST(Rules, TrafficApiSetsAndClearsRulesAndHashOn) {
  auto p = start_demo("primary");
  auto c = start_demo("canary");
  auto proxy = start_proxy(ab_config(p, c, ""), 1);
  auto put = [&](const std::string& body) { return fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {}, body); };
  auto r = put(R"({"split":[{"cluster":"app-primary","weight":1},{"cluster":"app-canary","weight":0}],
                   "rules":[{"match":[{"headers":{"x-canary":{"exact":"insider"}}}],"cluster":"app-canary"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto route = json::parse(r.body).as_object();
  EXPECT_EQ(json::serialize(route.at("rules")),
            R"([{"match":[{"headers":{"x-canary":{"exact":"insider"}}}],"cluster":"app-canary"}])");
  EXPECT_EQ(version_of(proxy.port, {{"x-canary", "insider"}}), "canary");
  EXPECT_EQ(version_of(proxy.port, {}), "primary");
  // Bad rules are refused whole, and change nothing.
  auto bad = put(R"({"rules":[{"match":[{"headers":{"x":{"regex":"(unclosed"}}}],"cluster":"app-canary"}]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("invalid RE2 regex"), std::string::npos) << bad.body;
  bad = put(R"({"rules":[{"match":[{"headers":{"x":{"exact":"1"}}}],"cluster":"ghost"}]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("unknown cluster 'ghost'"), std::string::npos) << bad.body;
  bad = put(R"({"hash_on":{"header":"a","cookie":"b"}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(version_of(proxy.port, {{"x-canary", "insider"}}), "canary");
  // null turns rules off; hash_on can be set the same way.
  ASSERT_EQ(put(R"({"rules":null,"hash_on":{"cookie":"session"}})").status, 200);
  EXPECT_EQ(version_of(proxy.port, {{"x-canary", "insider"}}), "primary");
  route = fetch_json(proxy.admin_port, "/routes/app").as_object();
  EXPECT_EQ(json::serialize(route.at("hash_on")), R"({"cookie":"session"})");
  EXPECT_EQ(json::serialize(route.at("overrides")), R"(["split","rules","hash_on"])");
}

TEST(Rules, BadRulesInTheFileAreRefusedWithTheirPosition) {
  std::string dir = make_temp_dir();
  write_file(dir + "/bad.yaml", R"(listeners:
  - name: http
    address: 127.0.0.1:0
    routes:
      - name: app
        split: [{cluster: a, weight: 1}]
        rules:
          - match: [{headers: {x: {regexp: "a"}}}]
            cluster: nowhere
        hash_on: {source_ip: false}
clusters:
  - {name: a, endpoints: [127.0.0.1:1]}
)");
  auto [code, out] = run(proxy_binary(), {"--validate", "--config", dir + "/bad.yaml"});
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find(dir + "/bad.yaml:8:36: unknown matcher 'regexp'"), std::string::npos) << out;
  EXPECT_NE(out.find(dir + "/bad.yaml:9:22: rule names unknown cluster 'nowhere'"), std::string::npos) << out;
  EXPECT_NE(out.find(dir + "/bad.yaml:10:30: hash_on.source_ip: only true"), std::string::npos) << out;
}

TEST(Headers, RequestAndResponseHeadersAreRewrittenPerRoute) {
  auto p = start_demo("primary");
  auto c = start_demo("canary");
  auto proxy = start_proxy(
      ab_config(p, c, R"(        request_headers: {set: {x-env: prod}, add: {x-added: "1"}, remove: [x-debug]}
        response_headers: {set: {x-served-by: vane}, add: {x-extra: a}, remove: [server]}
)"),
      1);
  auto r = fetch(proxy.port, "GET", "/headers", {{"x-debug", "secret"}, {"x-env", "dev"}, {"x-added", "0"}});
  ASSERT_EQ(r.status, 200);
  auto seen = json::parse(r.body).at("headers").as_object();
  EXPECT_FALSE(seen.contains("x-debug"));
  EXPECT_EQ(seen.at("x-env").as_string(), "prod");   // set replaces
  EXPECT_EQ(seen.at("x-added").as_string(), "0,1");  // add appends
  EXPECT_EQ(r.header("server"), "");
  EXPECT_EQ(r.header("x-served-by"), "vane");
  EXPECT_EQ(r.header("x-extra"), "a");
  // A value with a line break could split the message: refused at load.
  std::string dir = make_temp_dir();
  write_file(dir + "/bad.yaml", replace_all(read_text_file(proxy.config_path), "x-env: prod", "x-env: \"a\\r\\nb\""));
  auto [code, out] = run(proxy_binary(), {"--validate", "--config", dir + "/bad.yaml"});
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("control characters are not allowed"), std::string::npos) << out;
}

TEST(Faults, RouteAbortIsExactAndSeenOnlyDownstream) {
  auto p = start_demo("primary");
  auto c = start_demo("canary");
  auto proxy = start_proxy(ab_config(p, c, "        fault: {abort: {status: 503, percent: 10}}\n"), 1);
  http_client client(proxy.port);
  int aborted = 0;
  for (int i = 0; i < 100; ++i) {
    auto r = client.get("/");
    if (r.status == 503) {
      ++aborted;
      EXPECT_EQ(r.body, "fault filter abort\n");
    }
  }
  EXPECT_EQ(aborted, 10);
  EXPECT_EQ(p.stats().at("requests").as_int64() + c.stats().at("requests").as_int64(), 90);
}

TEST(Faults, ClusterAbortAndDelayAreWhatTheCanaryAnalysisSees) {
  auto p = start_demo("primary");
  auto c = start_demo("canary");
  std::string config = ab_config(p, c, "");
  config = replace_all(config, "{name: app-canary, endpoints: [" + c.address() + "]}",
                       "{name: app-canary, endpoints: [" + c.address() +
                           "], fault: {abort: {status: 500, percent: 50}, delay: {duration: 100ms, percent: 100}}}");
  auto proxy = start_proxy(config, 1);
  http_client client(proxy.port);
  int errors = 0;
  for (int i = 0; i < 40; ++i) errors += client.get("/").status == 500;
  EXPECT_EQ(errors, 10);  // half of the canary's 20
  EXPECT_EQ(c.stats().at("requests").as_int64(), 10);
  std::string metrics;
  // (a request is counted right after its last byte went out: wait for the last one)
  EXPECT_TRUE(eventually([&] {
    metrics = fetch(proxy.admin_port, "GET", "/metrics").body;
    return metrics.find(R"(vane_upstream_duration_seconds_count{route="app",cluster="app-canary"} 20)") !=
           std::string::npos;
  }));
  EXPECT_NE(metrics.find(R"(vane_upstream_responses_total{route="app",cluster="app-canary",code="500"} 10)"),
            std::string::npos);
  // Every canary attempt took the injected 100ms at least: none under the 75ms bound.
  EXPECT_NE(metrics.find(R"(vane_upstream_duration_seconds_bucket{route="app",cluster="app-canary",le="0.075"} 0)"),
            std::string::npos);
  EXPECT_NE(metrics.find(R"(vane_upstream_duration_seconds_count{route="app",cluster="app-canary"} 20)"),
            std::string::npos);
}

TEST(Faults, TrafficApiTurnsARouteFaultOnAndOff) {
  auto p = start_demo("primary");
  auto c = start_demo("canary");
  auto proxy = start_proxy(ab_config(p, c, ""), 1);
  auto put = [&](const std::string& body) { return fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {}, body); };
  auto r = put(R"({"fault":{"abort":{"status":502,"percent":100}}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::serialize(json::parse(r.body).at("fault")), R"({"abort":{"status":502,"percent":100}})");
  EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 502);
  auto bad = put(R"({"fault":{"abort":{"status":502,"percent":101}}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("percent must be a number from 0 to 100"), std::string::npos) << bad.body;
  ASSERT_EQ(put(R"({"fault":null})").status, 200);
  EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 200);
}

namespace {
// The Set-Cookie values of a response (there may be several).
std::vector<std::string> set_cookies(const proxy_instance& proxy, const std::string& cookie) {
  raw_connection c(proxy.port);
  c.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + (cookie.empty() ? "" : "Cookie: " + cookie + "\r\n") +
         "\r\n");
  std::string got = c.read_all();
  std::vector<std::string> out;
  std::size_t pos = 0;
  while ((pos = got.find("\r\nSet-Cookie: ", pos)) != std::string::npos) {
    pos += 14;
    out.push_back(got.substr(pos, got.find("\r\n", pos) - pos));
  }
  auto v = got.find("\r\nx-version: ");
  out.insert(out.begin(), v == std::string::npos ? "?" : got.substr(v + 13, got.find("\r\n", v + 13) - v - 13));
  return out;  // [version, set-cookie...]
}
}  // namespace

TEST(SessionAffinity, ClientsStayOnTheCanaryOfThisRunAndCookiesExpire) {
  auto p = start_demo("primary");
  auto c = start_demo("canary");
  auto proxy = start_proxy(
      ab_config(
          p, c,
          R"(        session_affinity: {cookie: vane-canary, primary_cookie: vane-primary, max_age: 1h, value: run1}
)"),
      1);
  // The 50/50 split alternates: a new client is sent somewhere and pinned there.
  std::vector<std::string> first = set_cookies(proxy, ""), second = set_cookies(proxy, "");
  std::vector<std::string> to_canary = first[0] == "canary" ? first : second;
  std::vector<std::string> to_primary = first[0] == "canary" ? second : first;
  ASSERT_EQ(to_canary.size(), 2u);
  EXPECT_EQ(to_canary[1], "vane-canary=run1; Max-Age=3600; Path=/");
  EXPECT_EQ(to_primary[1], "vane-primary=run1; Max-Age=3600; Path=/");
  // With their cookie, clients stay, whatever the split says, and get no new cookie.
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(set_cookies(proxy, "a=1; vane-canary=run1"), std::vector<std::string>{"canary"});
    EXPECT_EQ(set_cookies(proxy, "vane-primary=run1"), std::vector<std::string>{"primary"});
  }
  // A new run (vane-control PUTs a fresh value): the old cookie is expired, a new pick is made.
  auto put = fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {},
                   R"({"session_affinity":{"cookie":"vane-canary","primary_cookie":"vane-primary","value":"run2"}})");
  ASSERT_EQ(put.status, 200) << put.body;
  bool expired_seen = false;
  for (int i = 0; i < 2; ++i) {
    auto r = set_cookies(proxy, "vane-canary=run1");
    for (std::size_t k = 1; k < r.size(); ++k) expired_seen |= r[k] == "vane-canary=; Max-Age=0; Path=/";
    if (r[0] == "canary") {
      EXPECT_EQ(r[1], "vane-canary=run2; Max-Age=86400; Path=/");
    }
  }
  EXPECT_TRUE(expired_seen);
  // The canary out (weight 0): every affinity cookie is expired, everyone goes to the primary.
  put = fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {},
              R"({"split":[{"cluster":"app-primary","weight":1},{"cluster":"app-canary","weight":0}]})");
  ASSERT_EQ(put.status, 200);
  EXPECT_EQ(
      set_cookies(proxy, "vane-canary=run2; vane-primary=run2"),
      (std::vector<std::string>{"primary", "vane-canary=; Max-Age=0; Path=/", "vane-primary=; Max-Age=0; Path=/"}));
  // A route with one cluster cannot have affinity.
  auto bad =
      fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {}, R"({"split":[{"cluster":"app-primary","weight":1}]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("at least two clusters"), std::string::npos);
}

namespace {
std::string retry_config(const std::string& endpoints, const std::string& retries) {
  return R"(
listeners:
  - name: http
    address: 127.0.0.1:0
    routes:
      - name: app
        split: [{cluster: app, weight: 1}]
        retries: )" +
         retries + R"(
clusters:
  - {name: app, endpoints: [)" +
         endpoints + "]}\n";
}
}  // namespace

TEST(Retries, A5xxIsRetriedOnTheNextEndpointAndEveryAttemptIsCounted) {
  auto bad = start_demo("bad", {"--error-percent", "100", "--error-status", "503"});
  auto good = start_demo("good");
  auto proxy = start_proxy(retry_config(bad.address() + ", " + good.address(), "{attempts: 1, on: [5xx]}"), 1);
  http_client c(proxy.port);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(c.get("/").status, 200) << i;
  // Round-robin over two endpoints, two tries a request: every first try went to the bad one.
  EXPECT_EQ(bad.stats().at("requests").as_int64(), 20);
  EXPECT_EQ(metric(proxy, R"(vane_upstream_responses_total{route="app",cluster="app",code="503"})", 20), 20);
  EXPECT_EQ(metric(proxy, R"(vane_upstream_responses_total{route="app",cluster="app",code="200"})", 20), 20);
  EXPECT_EQ(metric(proxy, R"(vane_retries_total{route="app",cluster="app"})", 20), 20);
  EXPECT_EQ(metric(proxy, R"(vane_requests_total{route="app",cluster="app",code="200"})", 20), 20);
  // POST is not idempotent: its 503 goes to the client.
  int failed_posts = 0;
  for (int i = 0; i < 4; ++i) failed_posts += c.request("POST", "/", {}, "x").status == 503;
  EXPECT_EQ(failed_posts, 2);
  // PUT is idempotent, but a body that went to the bad endpoint cannot be sent again: its 503 goes to the client too.
  int failed_puts = 0;
  for (int i = 0; i < 4; ++i) failed_puts += c.request("PUT", "/", {}, "x").status == 503;
  EXPECT_EQ(failed_puts, 2);
}

TEST(Retries, TheBudgetCapsRetries) {
  auto bad = start_demo("bad", {"--error-percent", "100", "--error-status", "503"});
  // No budget at all: nothing is retried.
  {
    auto proxy = start_proxy(retry_config(bad.address(), "{attempts: 3, on: [5xx], budget: {percent: 0, min: 0}}"), 1);
    EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 503);
    EXPECT_EQ(metric(proxy, R"(vane_retries_total{route="app",cluster="app"})", 0), 0);
  }
  // One retry in flight allowed: a lone request is tried 1 + 3 times.
  {
    auto proxy =
        start_proxy(retry_config(bad.address(), "{attempts: 3, on: [gateway-error], budget: {percent: 0, min: 1}}"), 1);
    EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 503);
    EXPECT_EQ(metric(proxy, R"(vane_upstream_responses_total{route="app",cluster="app",code="503"})", 4), 4);
    EXPECT_EQ(metric(proxy, R"(vane_retries_total{route="app",cluster="app"})", 3), 3);
  }
}

TEST(Retries, PerTryTimeoutMovesOnToAnotherEndpoint) {
  auto slow = start_demo("slow", {"--latency", "20s"});
  auto fast = start_demo("fast");
  auto proxy = start_proxy(
      retry_config(slow.address() + ", " + fast.address(), "{attempts: 1, per_try_timeout: 500ms, on: [5xx]}"), 1);
  http_client c(proxy.port);
  for (int i = 0; i < 2; ++i) {
    auto r = c.get("/");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("x-version"), "fast");
  }
  // Each first try went to the slow endpoint (round-robin, two tries a request) and timed out.
  EXPECT_EQ(metric(proxy, R"(vane_upstream_responses_total{route="app",cluster="app",code="504"})", 2), 2);
}

// Each try has the route's timeout to get a connection: a retry after a try that timed out connects
// and is sent (it found the first try's deadline spent, and failed as a connect timeout that never
// connected, counted as two connect errors and two more 504s of the upstream's).
TEST(Retries, ATryAfterATimeoutGetsAConnectionOfItsOwn) {
  auto slow = start_demo("slow", {"--latency", "20s"});
  std::string config = retry_config(slow.address(), "{attempts: 2, on: [gateway-error]}");
  config = replace_all(config, "        retries:", "        timeout: 300ms\n        retries:");
  auto proxy = start_proxy(config, 1);
  auto r = fetch(proxy.port, "GET", "/");
  EXPECT_EQ(r.status, 504);
  EXPECT_EQ(r.body, "upstream request timeout\n");
  EXPECT_TRUE(eventually([&] { return slow.stats().at("requests").as_int64() == 3; })) << json::serialize(slow.stats());
  EXPECT_EQ(metric(proxy, R"(vane_upstream_responses_total{route="app",cluster="app",code="504"})", 3), 3);
  EXPECT_EQ(metric_now(proxy, R"(vane_upstream_connect_errors_total{cluster="app"})"), 0);
}

// Every refused connect counts, also when the pool moves on to the next endpoint and the request succeeds.
TEST(Retries, EveryRefusedConnectIsCountedEvenWhenTheNextEndpointAnswers) {
  auto good = start_demo("good");
  const std::string dead = "127.0.0.1:" + std::to_string(unused_port());
  auto proxy = start_proxy(retry_config(dead + ", " + good.address(), "{attempts: 0}"), 1);
  http_client c(proxy.port);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(c.get("/").status, 200) << i;
  // Round-robin: the five requests that picked the dead endpoint were connected to the live one instead.
  EXPECT_EQ(metric(proxy, R"(vane_upstream_connect_errors_total{cluster="app"})", 5), 5);
}

namespace {
std::string mirror_config(const demo_instance& p, const std::string& mirror_endpoints, const std::string& mirror,
                          const std::string& mirror_cluster_extra = "") {
  return R"(
listeners:
  - name: http
    address: 127.0.0.1:0
    routes:
      - name: app
        split: [{cluster: app-primary, weight: 1}]
        timeout: 60s
        mirror: )" +
         mirror + R"(
clusters:
  - {name: app-primary, endpoints: [)" +
         p.address() + R"(]}
  - {name: app-shadow, endpoints: [)" +
         mirror_endpoints + "]" + mirror_cluster_extra + "}\n";
}
}  // namespace

TEST(Mirror, CopiesGoToTheMirrorWithAShadowHostAndTheirBodies) {
  auto p = start_demo("primary");
  auto m = start_demo("mirror");
  auto proxy = start_proxy(mirror_config(p, m.address(), "{cluster: app-shadow, percent: 50, max_body: 2KiB}"), 1);
  http_client c(proxy.port);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(c.request("GET", "/get", {{"host", "shop.example:8080"}}).status, 200);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(c.request("POST", "/post", {}, std::string(1000, 'x')).status, 200);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(c.request("POST", "/big", {}, std::string(3000, 'y')).status, 200);
  EXPECT_EQ(p.stats().at("requests").as_int64(), 24);
  // Half of each: 5 GETs and 5 POSTs copied; of the big POSTs, 2 picked and shed for their size.
  ASSERT_TRUE(eventually([&] { return m.stats().at("requests").as_int64() == 10; })) << json::serialize(m.stats());
  EXPECT_EQ(m.stats().at("bytes_received").as_int64(), 5 * 1000);
  EXPECT_EQ(metric(proxy, R"(vane_mirror_responses_total{route="app",cluster="app-shadow",code="200"})", 10), 10);
  EXPECT_EQ(metric(proxy, R"(vane_mirror_shed_total{route="app",cluster="app-shadow",reason="body_too_large"})", 2), 2);
  EXPECT_EQ(metric(proxy, R"(vane_mirror_duration_seconds_count{route="app",cluster="app-shadow"})", 10), 10);
  // Mirror traffic is only in the mirror series.
  EXPECT_EQ(metric_now(proxy, R"(vane_upstream_responses_total{route="app",cluster="app-shadow",code="200"})"), 0);
  EXPECT_EQ(metric(proxy, R"(vane_requests_total{route="app",cluster="app-primary",code="200"})", 24), 24);
  // A GET copy carried the shadow host (the last copy was a POST with the default Host).
  ASSERT_EQ(c.request("PUT", "/", {{"host", "shop.example:8080"}}, "z").status, 200);  // not copied (percent 50)...
  ASSERT_EQ(c.request("PUT", "/", {{"host", "shop.example:8080"}}, "z").status, 200);  // ...this one is
  ASSERT_TRUE(eventually([&] { return m.stats().at("requests").as_int64() == 11; }));
  EXPECT_EQ(m.stats().at("last_host").as_string(), "shop.example-shadow:8080");
}

// A mirror's interim answers (a 103 before its 200) are read past, as an
// attempt's are: the copy is counted with its final status.
TEST(Mirror, ACopyIsCountedWithItsFinalStatusNotAnInterimOne) {
  auto p = start_demo("primary");
  scripted_http_server m([](const scripted_request&) {
    scripted_reply r = http_reply(200, "ok");
    r.bytes = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + r.bytes;
    return r;
  });
  auto proxy = start_proxy(mirror_config(p, "127.0.0.1:" + std::to_string(m.port()), "{cluster: app-shadow}"), 1);
  http_client c(proxy.port);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.get("/").status, 200) << i;
  EXPECT_EQ(metric(proxy, R"(vane_mirror_responses_total{route="app",cluster="app-shadow",code="200"})", 3), 3);
  EXPECT_EQ(metric_now(proxy, R"(vane_mirror_responses_total{route="app",cluster="app-shadow",code="103"})"), 0);
}

TEST(Mirror, AHangingOrRefusingMirrorNeverDelaysOrFailsThePrimary) {
  auto p = start_demo("primary");
  auto hang = start_demo("hang", {"--latency", "60s"});
  {
    // Copies to a mirror that never answers: at most max_connections (4) in flight, the rest shed.
    auto proxy = start_proxy(
        mirror_config(p, hang.address(), "{cluster: app-shadow}", ", max_connections: 4, connect_timeout: 1s"), 1);
    http_client c(proxy.port);
    for (int i = 0; i < 50; ++i) ASSERT_EQ(c.get("/").status, 200) << i;
    // No copy has been answered or timed out (the route timeout is 60s): no request waited for one.
    EXPECT_EQ(metric_now(proxy, R"(vane_mirror_duration_seconds_count{route="app",cluster="app-shadow"})"), 0);
    EXPECT_EQ(metric_now(proxy, R"(vane_mirror_shed_total{route="app",cluster="app-shadow",reason="overload"})"), 46);
    EXPECT_EQ(metric(proxy, R"(vane_requests_total{route="app",cluster="app-primary",code="200"})", 50), 50);
  }
  {
    // Copies to a mirror that refuses connections: each one counted as 502, the primary untouched.
    auto proxy =
        start_proxy(mirror_config(p, "127.0.0.1:" + std::to_string(unused_port()), "{cluster: app-shadow}"), 1);
    http_client c(proxy.port);
    for (int i = 0; i < 20; ++i) ASSERT_EQ(c.get("/").status, 200) << i;
    EXPECT_EQ(metric(proxy, R"(vane_mirror_responses_total{route="app",cluster="app-shadow",code="502"})", 20), 20);
    EXPECT_EQ(metric_now(proxy, R"(vane_upstream_connect_errors_total{cluster="app-shadow"})"),
              0);  // not the primary's
  }
}

// The mirror's max_connections holds for copies decided while other requests waited on the primary:
// such copies are shed when their turn comes, not queued in the mirror's pool.
TEST(Mirror, CopiesPastTheMirrorsLimitAreShedWhileRequestsWaitOnThePrimary) {
  auto p = start_demo("primary", {"--latency", "300ms"});
  auto hang = start_demo("hang", {"--latency", "60s"});
  auto proxy = start_proxy(
      mirror_config(p, hang.address(), "{cluster: app-shadow}", ", max_connections: 4, connect_timeout: 1s"), 1);
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 20; ++t) clients.emplace_back([&] { ok += fetch(proxy.port, "GET", "/").status == 200; });
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 20);
  EXPECT_EQ(metric(proxy, R"(vane_mirror_shed_total{route="app",cluster="app-shadow",reason="overload"})", 16), 16);
  EXPECT_TRUE(eventually([&] { return hang.stats().at("requests").as_int64() == 4; })) << json::serialize(hang.stats());
}

TEST(Mirror, TrafficApiTurnsMirroringOnAndOff) {
  auto p = start_demo("primary");
  auto m = start_demo("mirror");
  auto proxy = start_proxy(mirror_config(p, m.address(), "{cluster: app-shadow, percent: 0}"), 1);
  ASSERT_EQ(fetch(proxy.port, "GET", "/").status, 200);
  auto r =
      fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {}, R"({"mirror":{"cluster":"app-shadow","percent":100}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::serialize(json::parse(r.body).at("mirror")),
            R"({"cluster":"app-shadow","percent":100,"max_body":65536})");
  ASSERT_EQ(fetch(proxy.port, "GET", "/").status, 200);
  ASSERT_TRUE(eventually([&] { return m.stats().at("requests").as_int64() == 1; }));
  ASSERT_EQ(fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {}, R"({"mirror":null})").status, 200);
  ASSERT_EQ(fetch(proxy.port, "GET", "/").status, 200);
  EXPECT_EQ(p.stats().at("requests").as_int64(), 3);
  EXPECT_EQ(m.stats().at("requests").as_int64(), 1);
}

namespace {
// An example config of configs/, pointed at the given demos and at ports the OS picks.
proxy_instance start_example(const std::string& name, const demo_instance& primary, const demo_instance& canary) {
  std::string text = read_text_file(source_dir() + "/configs/" + name);
  text = replace_all(text, "127.0.0.1:8080", "127.0.0.1:0");
  text = replace_all(text, "127.0.0.1:9898", primary.address());
  text = replace_all(text, "127.0.0.1:9899", canary.address());
  return start_proxy(text, 1);
}
}  // namespace

TEST(Examples, AbTestingYamlSendsInsidersToTheCanary) {
  auto p = start_demo("primary");
  auto c = start_demo("canary");
  auto proxy = start_example("ab-testing.yaml", p, c);
  EXPECT_EQ(version_of(proxy.port, {{"x-canary", "insider"}}), "canary");
  EXPECT_EQ(version_of(proxy.port, {{"cookie", "canary=always"}}), "canary");
  EXPECT_EQ(version_of(proxy.port, {}, "/?variant=b"), "canary");
  // Everyone else by user, 90/10.
  int on_canary = 0;
  for (int u = 0; u < 200; ++u)
    on_canary += version_of(proxy.port, {{"x-user-id", "u" + std::to_string(u)}}) == "canary";
  EXPECT_GT(on_canary, 5);
  EXPECT_LT(on_canary, 40);
}

TEST(Examples, StickyYamlKeepsUsersAndOnlyMovesThemToTheCanary) {
  auto p = start_demo("primary");
  auto c = start_demo("canary");
  auto proxy = start_example("sticky.yaml", p, c);
  std::map<std::string, std::string> before;
  for (int u = 0; u < 100; ++u) {
    std::string user = "u" + std::to_string(u);
    before[user] = version_of(proxy.port, {{"x-user-id", user}});
    EXPECT_EQ(version_of(proxy.port, {{"x-user-id", user}}), before[user]);
  }
  ASSERT_EQ(fetch(proxy.admin_port, "PUT", "/routes/podinfo/traffic", {},
                  R"({"split":[{"cluster":"podinfo-primary","weight":50},{"cluster":"podinfo-canary","weight":50}]})")
                .status,
            200);
  int moved = 0;
  for (const auto& [user, was] : before) {
    std::string now = version_of(proxy.port, {{"x-user-id", user}});
    if (was == "canary") {
      EXPECT_EQ(now, "canary") << user << " left the canary";
    }
    moved += was != now;
  }
  EXPECT_GT(moved, 0);
}

TEST(Examples, MirroringYamlServesFromThePrimaryAndCopiesToTheCanary) {
  auto p = start_demo("primary");
  auto c = start_demo("canary");
  auto proxy = start_example("mirroring.yaml", p, c);
  http_client client(proxy.port);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(client.get("/").header("x-version"), "primary");
  ASSERT_TRUE(eventually([&] { return c.stats().at("requests").as_int64() == 20; }));
  EXPECT_EQ(metric(proxy, R"(vane_mirror_responses_total{route="podinfo",cluster="podinfo-canary",code="200"})", 20),
            20);
}

TEST(Retries, ACanaryThatResetsConnectionsIsRetriedAndCounted) {
  auto resetting = start_demo("resetting", {"--reset-percent", "100"});
  auto good = start_demo("good");
  // Without retries: every request the resetting endpoint takes fails with 502, counted as such.
  {
    auto proxy = start_proxy(retry_config(resetting.address() + ", " + good.address(), "{attempts: 0}"), 1);
    http_client c(proxy.port);
    int failed = 0;
    for (int i = 0; i < 10; ++i) failed += c.get("/").status == 502;
    EXPECT_EQ(failed, 5);
    EXPECT_EQ(metric(proxy, R"(vane_upstream_responses_total{route="app",cluster="app",code="502"})", 5), 5);
  }
  // With retries on reset: every request succeeds, the resets are still counted.
  {
    auto proxy =
        start_proxy(retry_config(resetting.address() + ", " + good.address(), "{attempts: 1, on: [reset]}"), 1);
    http_client c(proxy.port);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(c.get("/").status, 200) << i;
    EXPECT_EQ(metric(proxy, R"(vane_upstream_responses_total{route="app",cluster="app",code="502"})", 10), 10);
    EXPECT_EQ(metric(proxy, R"(vane_retries_total{route="app",cluster="app"})", 10), 10);
  }
}
