// The proxy guard and the canary fallback (route keys `guard`, `fallback`)
// through the real binary: a canary that fails, real sockets, counts.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <csignal>
#include <filesystem>
#include <thread>
#include <vector>

#include "tests/support/fixtures.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

using namespace vane::test;
namespace json = boost::json;

namespace {

json::object route_guard(const proxy_instance& p, const std::string& route = "app") {
  return fetch_json(p.admin_port, "/routes/" + route).at("guard").as_object();
}

std::int64_t canary_requests(const demo_instance& d) { return d.stats().at("requests").as_int64(); }

const char* guard_10 = "        guard: {cluster: app-canary, max_error_percent: 50, min_requests: 10, window: 10m}\n";

}  // namespace

// Requests one at a time over fresh connections spread over both workers: the
// workers' windows are summed, so the guard trips at exactly min_requests
// failed canary attempts; from then on no request goes to the canary.
TEST(Guard, TripsOnTheWorkersSummedWindowsAndTheCanaryGetsNoNewRequest) {
  auto primary = start_demo("p");
  auto canary = start_demo("c", {"--error-percent", "100", "--error-status", "503"});
  auto proxy = start_proxy(half_split_config(primary.address(), canary.address(), guard_10), 2);
  int failed = 0;
  for (int i = 0; i < 60; ++i) failed += fetch(proxy.port, "GET", "/").status == 503;
  EXPECT_EQ(failed, 10);
  EXPECT_EQ(canary_requests(canary), 10);
  json::object g = route_guard(proxy);
  EXPECT_EQ(g.at("tripped").as_bool(), true);
  EXPECT_EQ(g.at("requests").as_int64(), 10);
  EXPECT_EQ(g.at("error_percent").as_int64(), 100);  // (an integer when whole, as every percentage shown)
  EXPECT_TRUE(g.at("since").is_string());
  EXPECT_EQ(metric(proxy, R"(vane_guard_trips_total{route="app",cluster="app-canary"})", 1), 1);
  EXPECT_TRUE(proxy.process->wait_for("guard tripped on cluster app-canary"));
  auto guards = fetch_json(proxy.admin_port, "/stats/latency").at("guards").as_array();
  ASSERT_EQ(guards.size(), 1u);
  EXPECT_EQ(guards[0].at("route").as_string(), "app");
  EXPECT_EQ(guards[0].at("tripped").as_bool(), true);

  // A reload keeps the trip.
  std::string text = read_text_file(proxy.config_path);
  write_file(proxy.config_path, "limits: {max_headers: 60}\n" + text);
  proxy.process->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return fetch_json(proxy.admin_port, "/config").at("generation").as_int64() >= 2; }));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 200) << i;
  EXPECT_EQ(canary_requests(canary), 10);
  EXPECT_TRUE(route_guard(proxy).at("tripped").as_bool());

  // A traffic PUT that changes nothing keeps it (vane-control PUTs the same policy every tick)...
  auto put =
      fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {},
            R"({"guard": {"cluster": "app-canary", "max_error_percent": 50, "min_requests": 10, "window": "10m"}})");
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_TRUE(route_guard(proxy).at("tripped").as_bool());
  EXPECT_EQ(json::parse(put.body).at("policy_generation").as_int64(), 1);
  // ...one that installs a new policy generation resets it: the canary takes requests again (and trips it again).
  put = fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {},
              R"({"guard": {"cluster": "app-canary", "max_error_percent": 50, "min_requests": 10, "window": "9m"}})");
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(json::parse(put.body).at("policy_generation").as_int64(), 2);
  EXPECT_FALSE(route_guard(proxy).at("tripped").as_bool());
  failed = 0;
  for (int i = 0; i < 60; ++i) failed += fetch(proxy.port, "GET", "/").status == 503;
  EXPECT_EQ(failed, 10);
  EXPECT_EQ(canary_requests(canary), 20);
  EXPECT_EQ(metric(proxy, R"(vane_guard_trips_total{route="app",cluster="app-canary"})", 2), 2);
  // `null` removes it: the canary is back in the split.
  put = fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {}, R"({"guard": null})");
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_TRUE(fetch_json(proxy.admin_port, "/routes/app").at("guard").is_null());
  // (Each worker alternates primary and canary, starting with the primary.)
  failed = 0;
  for (int i = 0; i < 20; ++i) failed += fetch(proxy.port, "GET", "/").status == 503;
  EXPECT_GE(failed, 9);
}

// Rules and sticky hashes that would pick a tripped canary fall through to the split's other cluster.
TEST(Guard, RulesAndHashesFallThroughOnceTripped) {
  auto primary = start_demo("p");
  auto canary = start_demo("c", {"--error-percent", "100"});
  auto proxy = start_proxy(half_split_config(primary.address(), canary.address(),
                                             std::string(guard_10) + R"(        hash_on: {header: x-user}
        rules:
          - match: [{headers: {x-canary: {exact: "1"}}}]
            cluster: app-canary
)"),
                           1);
  http_client c(proxy.port);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c.request("GET", "/", {{"x-canary", "1"}}).status, 500) << i;
  EXPECT_TRUE(route_guard(proxy).at("tripped").as_bool());
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(c.request("GET", "/", {{"x-canary", "1"}}).header("x-version"), "p") << i;
    EXPECT_EQ(c.request("GET", "/", {{"x-user", "u" + std::to_string(i)}}).header("x-version"), "p") << i;
  }
  EXPECT_EQ(canary_requests(canary), 10);
}

TEST(Guard, BadGuardsAreRefused) {
  auto primary = start_demo("p");
  const std::string dir = make_temp_dir();
  const std::string file = dir + "/bad.yaml";
  write_file(file, half_split_config(primary.address(), primary.address(),
                                     "        guard: {cluster: app-other, max_error_percent: 0, window: 5ms}\n") +
                       "  - {name: app-other, endpoints: [" + primary.address() + "]}\n");
  auto [code, out] = run(proxy_binary(), {"--validate", "--config", file});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("bad.yaml:10:26: cluster 'app-other' is not in the route's split"), std::string::npos) << out;
  EXPECT_NE(out.find("guard.max_error_percent must be more than 0"), std::string::npos) << out;
  EXPECT_NE(out.find("guard.window must be from 100ms to 10m"), std::string::npos) << out;

  auto proxy = start_proxy(half_split_config(primary.address(), primary.address(), ""), 1);
  for (const char* body :
       {R"({"guard": {"cluster": "nope"}})", R"({"guard": {"cluster": "app-canary", "min_requests": 0}})",
        R"({"guard": {"max_error_percent": 20}})", R"({"fallback": {"from": "app-canary"}})",
        R"({"fallback": {"from": "app-canary", "to": "app-canary"}})",
        R"({"fallback": {"from": "app-canary", "to": "app-primary", "on": ["teapot"]}})"}) {
    auto r = fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {}, body);
    EXPECT_EQ(r.status, 400) << body << " " << r.body;
    EXPECT_NE(r.body.find("\"error\""), std::string::npos) << r.body;
  }
  // A guard whose cluster the route's split does not hold: refused too.
  auto r = fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {},
                 R"({"split": [{"cluster": "app-primary", "weight": 1}], "guard": {"cluster": "app-canary"}})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_TRUE(fetch_json(proxy.admin_port, "/routes/app").at("guard").is_null());
}

// The canary's 503s, resets and refused connections become primary answers;
// the canary's failed attempts still count as its own.
TEST(Fallback, CanaryFailuresBecomePrimaryAnswersAndStillCount) {
  auto primary = start_demo("p");
  auto failing = start_demo("c", {"--error-percent", "100", "--error-status", "503"});
  const std::string fallback = "        fallback: {from: app-canary, to: app-primary}\n";
  auto proxy = start_proxy(half_split_config(primary.address(), failing.address(), fallback), 1);
  http_client c(proxy.port);
  for (int i = 0; i < 20; ++i) {
    auto r = c.get("/");
    EXPECT_EQ(r.status, 200) << i;
    EXPECT_EQ(r.header("x-version"), "p") << i;
  }
  EXPECT_EQ(canary_requests(failing), 10);
  EXPECT_EQ(metric(proxy, R"(vane_fallbacks_total{route="app",from="app-canary",to="app-primary"})", 10), 10);
  EXPECT_EQ(metric(proxy, R"(vane_upstream_responses_total{route="app",cluster="app-canary",code="503"})", 10), 10);
  EXPECT_EQ(metric(proxy, R"(vane_requests_total{route="app",cluster="app-primary",code="200"})", 20), 20);
  // /stats/latency: the canary's attempts, as the analysis reads them.
  bool seen = false;
  const json::value latency = fetch_json(proxy.admin_port, "/stats/latency");
  for (const auto& r : latency.at("routes").as_array()) {
    if (r.at("cluster").as_string() != "app-canary") continue;
    seen = true;
    EXPECT_EQ(r.at("upstream").at("codes").at("503").as_int64(), 10);
  }
  EXPECT_TRUE(seen);
  // A PUT body is kept and sent again whole, chunked or not; a POST that reached the canary is not resent.
  const std::string body(3000, 'x');
  int puts = 0, posts_failed = 0;
  for (int i = 0; i < 4; ++i) {
    auto r = c.request("PUT", "/up", {}, body);
    puts += r.status == 200 && r.body.find("\"received\":3000") != std::string::npos;
    raw_connection raw(proxy.port);
    raw.send("PUT /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    const std::string chunked = raw.read_until("}");
    puts += chunked.starts_with("HTTP/1.1 200") && chunked.find("\"received\":5") != std::string::npos;
    posts_failed += c.request("POST", "/up", {}, body).status == 503;
  }
  EXPECT_EQ(puts, 8);
  EXPECT_EQ(posts_failed, 2);

  // A canary that resets every connection, then one that is not there at all.
  auto resetting = start_demo("c", {"--reset-percent", "100"});
  auto reset_proxy = start_proxy(half_split_config(primary.address(), resetting.address(), fallback), 1);
  http_client rc(reset_proxy.port);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(rc.get("/").status, 200) << i;
  EXPECT_EQ(metric(reset_proxy, R"(vane_upstream_responses_total{route="app",cluster="app-canary",code="502"})", 5), 5);
  const std::string dead = "127.0.0.1:" + std::to_string(unused_port());
  auto dead_proxy = start_proxy(half_split_config(primary.address(), dead, fallback), 1);
  http_client dc(dead_proxy.port);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(dc.request("POST", "/", {}, "x").status, 200) << i;  // nothing was sent
  EXPECT_EQ(metric(dead_proxy, R"(vane_fallbacks_total{route="app",from="app-canary",to="app-primary"})", 5), 5);
}

TEST(Fallback, TheBudgetHoldsAndTheTrafficApiSetsIt) {
  auto primary = start_demo("p");
  auto failing = start_demo("c", {"--error-percent", "100", "--error-status", "503"});
  auto proxy = start_proxy(half_split_config(primary.address(), failing.address(), ""), 1);
  http_client c(proxy.port);
  int failed = 0;
  for (int i = 0; i < 10; ++i) failed += c.get("/").status == 503;
  EXPECT_EQ(failed, 5);
  // (Requests on fresh connections from here: a keep-alive connection waiting
  // for its next request keeps the policy it had when it started waiting.)
  // No budget at all: the client gets the canary's failure.
  auto put = fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {},
                   R"({"fallback": {"from": "app-canary", "to": "app-primary", "budget": {"percent": 0, "min": 0}}})");
  ASSERT_EQ(put.status, 200) << put.body;
  failed = 0;
  for (int i = 0; i < 10; ++i) failed += fetch(proxy.port, "GET", "/").status == 503;
  EXPECT_EQ(failed, 5);
  EXPECT_EQ(metric_now(proxy, R"(vane_fallbacks_total{route="app",from="app-canary",to="app-primary"})"), 0);
  // The default budget: every failure falls back.
  put = fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {},
              R"({"fallback": {"from": "app-canary", "to": "app-primary", "on": ["5xx"]}})");
  ASSERT_EQ(put.status, 200) << put.body;
  auto shown = json::parse(put.body).at("fallback");
  EXPECT_EQ(shown.at("on").as_array().size(), 1u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 200) << i;
  EXPECT_EQ(metric(proxy, R"(vane_fallbacks_total{route="app",from="app-canary",to="app-primary"})", 5), 5);
}

// configs/guarded.yaml as shipped: a canary failing every request is never seen by a client, and is
// cut off by the guard after its first 20 failures.
TEST(Examples, GuardedYamlHidesAFailingCanaryAndCutsItOff) {
  auto primary = start_demo("p");
  auto canary = start_demo("c", {"--error-percent", "100", "--error-status", "503"});
  std::string text = read_text_file(source_dir() + "/configs/guarded.yaml");
  text = replace_all(text, "127.0.0.1:8080", "127.0.0.1:0");
  text = replace_all(text, "127.0.0.1:9898", primary.address());
  text = replace_all(text, "127.0.0.1:9899", canary.address());
  text = replace_all(text, "window: 1s", "window: 10m");  // (the loop's pace does not matter)
  auto proxy = start_proxy(text, 2);
  for (int i = 0; i < 400; ++i) ASSERT_EQ(fetch(proxy.port, "GET", "/").status, 200) << i;
  EXPECT_EQ(canary_requests(canary), 20);
  EXPECT_TRUE(route_guard(proxy, "podinfo").at("tripped").as_bool());
  EXPECT_EQ(metric(proxy, R"(vane_fallbacks_total{route="podinfo",from="podinfo-canary",to="podinfo-primary"})", 20),
            20);
}

// Each attempt's connection goes back to its own cluster's pool: with two connections a cluster per
// worker, a canary whose every answer falls back keeps taking requests, and the primary keeps opening
// connections as it needs.
TEST(Fallback, ConnectionsGoBackToTheirOwnPools) {
  auto primary = start_demo("p");
  auto failing = start_demo("c", {"--error-percent", "100", "--error-status", "503"});
  auto proxy = start_proxy(R"(
listeners:
  - name: http
    address: 127.0.0.1:0
    routes:
      - name: app
        timeout: 3s
        split: [{cluster: app-primary, weight: 50}, {cluster: app-canary, weight: 50}]
        fallback: {from: app-canary, to: app-primary}
clusters:
  - {name: app-primary, endpoints: [)" +
                               primary.address() +
                               R"(], max_connections: 2}
  - {name: app-canary, endpoints: [)" +
                               failing.address() +
                               R"(], max_connections: 2}
)",
                           1);
  // Two clients at once, each on fresh connections.
  std::vector<int> ok(2, 0);
  std::vector<std::thread> clients;
  for (int t = 0; t < 2; ++t)
    clients.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) ok[t] += fetch(proxy.port, "GET", "/").status == 200;
    });
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok[0] + ok[1], 40);
  EXPECT_EQ(canary_requests(failing), 20);
  EXPECT_EQ(metric(proxy, R"(vane_fallbacks_total{route="app",from="app-canary",to="app-primary"})", 20), 20);
}
