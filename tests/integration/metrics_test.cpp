// vane-proxy's /metrics and /stats/latency through the real binary: every
// request counted once with the status sent, scrapes that promtool accepts,
// gauges that follow the live policy, exact counts under concurrent load, and
// a real Prometheus server answering Flagger's queries over vane's metrics.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <csignal>
#include <filesystem>
#include <thread>

#include "common/histogram.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/prometheus.hpp"

using namespace vane::test;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

// app: /app split between primary and canary; down: /down to a cluster nothing listens on.
std::string metrics_config(const demo_instance& primary, const demo_instance& canary, int wp, int wc,
                           const std::string& top = "") {
  return top + R"(
listeners:
  - name: http
    address: 127.0.0.1:0
    routes:
      - name: app
        match: {path_prefix: /app}
        split:
          - {cluster: app-primary, weight: )" +
         std::to_string(wp) + R"(}
          - {cluster: app-canary, weight: )" +
         std::to_string(wc) + R"(}
      - name: down
        match: {path_prefix: /down}
        split: [{cluster: dead, weight: 1}]
clusters:
  - {name: app-primary, endpoints: [)" +
         primary.address() + R"(]}
  - {name: app-canary, endpoints: [)" +
         canary.address() + R"(]}
  - {name: dead, endpoints: [127.0.0.1:)" +
         std::to_string(unused_port()) + "]}\n";
}

std::string scrape(const proxy_instance& p) {
  auto r = fetch(p.admin_port, "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return r.body;
}

void expect_promtool_clean(const std::string& text) {
  bool ok = false;
  std::string complaints = promtool_check(text, ok);
  EXPECT_TRUE(ok) << complaints;
  EXPECT_EQ(complaints, "");
}

using labels = std::map<std::string, std::string>;

double requests(const std::vector<sample>& s, const std::string& route, const std::string& cluster,
                const std::string& code) {
  return metric_sum(s, "vane_requests_total", {{"route", route}, {"cluster", cluster}, {"code", code}});
}
double upstream(const std::vector<sample>& s, const std::string& route, const std::string& cluster,
                const std::string& code) {
  return metric_sum(s, "vane_upstream_responses_total", {{"route", route}, {"cluster", cluster}, {"code", code}});
}

// Sends n GETs to `target` from `threads` keep-alive connections at once.
void send_parallel(std::uint16_t port, const std::string& target, int n, int threads) {
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      http_client c(port);
      while (next.fetch_add(1) < n) {
        auto r = c.get(target);
        ASSERT_TRUE(r.status == 200 || r.status == 503) << r.status;
      }
    });
  }
  for (auto& t : pool) t.join();
}

}  // namespace

TEST(Metrics, EveryRequestIsCountedOnceWithTheStatusSent) {
  auto primary = start_demo("p");
  auto canary = start_demo("c", {"--error-percent", "10", "--error-status", "503"});
  auto proxy = start_proxy(metrics_config(primary, canary, 50, 50), 1);
  {
    http_client c(proxy.port);
    for (int i = 0; i < 200; ++i) c.get("/app/x");  // 100 + 100, exactly (one worker)
    for (int i = 0; i < 3; ++i) EXPECT_EQ(c.get("/nothing").status, 404);
    for (int i = 0; i < 2; ++i) EXPECT_EQ(c.get("/down").status, 502);
  }
  {
    raw_connection c(proxy.port);
    c.send("GET /app HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n");  // two Host headers: 400
    EXPECT_EQ(c.read_all().rfind("HTTP/1.1 400 ", 0), 0u);
  }
  {
    // The client goes away in the middle of its body: 499, on whichever cluster was picked.
    raw_connection c(proxy.port);
    c.send("POST /app HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
  }
  ASSERT_TRUE(eventually([&] {
    auto s = parse_metrics(scrape(proxy));
    return metric_sum(s, "vane_requests_total", {{"code", "499"}}) == 1;
  }));
  std::string text = scrape(proxy);
  expect_promtool_clean(text);
  auto s = parse_metrics(text);
  EXPECT_EQ(requests(s, "app", "app-primary", "200"), 100);
  EXPECT_EQ(requests(s, "app", "app-canary", "200"), 90);
  EXPECT_EQ(requests(s, "app", "app-canary", "503"), 10);
  EXPECT_EQ(requests(s, "none", "none", "404"), 3);
  EXPECT_EQ(requests(s, "none", "none", "400"), 1);
  EXPECT_EQ(requests(s, "down", "dead", "502"), 2);
  EXPECT_EQ(metric_sum(s, "vane_requests_total"), 200 + 3 + 2 + 1 + 1);
  // Upstream attempts: the 503s are the canary's own; connect failures are the proxy's 502.
  EXPECT_EQ(upstream(s, "app", "app-primary", "200"), 100);
  EXPECT_EQ(upstream(s, "app", "app-canary", "200"), 90);
  EXPECT_EQ(upstream(s, "app", "app-canary", "503"), 10);
  EXPECT_EQ(upstream(s, "down", "dead", "502"), 2);
  EXPECT_EQ(metric_sum(s, "vane_upstream_responses_total"), 202);  // the 499 got no answer; 404/400 never left
  EXPECT_EQ(metric_sum(s, "vane_upstream_connect_errors_total", {{"cluster", "dead"}}), 2);
  EXPECT_EQ(metric_sum(s, "vane_upstream_connect_errors_total", {{"cluster", "app-canary"}}), 0);
  // Histograms hold the same requests.
  EXPECT_EQ(metric_sum(s, "vane_upstream_duration_seconds_count", {{"route", "app"}, {"cluster", "app-canary"}}), 100);
  EXPECT_EQ(metric_sum(s, "vane_request_duration_seconds_count"), 207);
  EXPECT_EQ(metric_sum(s, "vane_request_duration_seconds_bucket", {{"le", "+Inf"}}), 207);
  EXPECT_GE(metric_sum(s, "process_start_time_seconds"), 1.7e9);
  EXPECT_GT(metric_sum(s, "process_resident_memory_bytes"), 0);
  EXPECT_GT(metric_sum(s, "process_open_fds"), 0);

  // /stats/latency agrees with /metrics.
  auto latency = fetch_json(proxy.admin_port, "/stats/latency").as_object();
  EXPECT_EQ(latency.at("unit").as_string(), "microseconds");
  // (Boost.JSON 1.81 parses doubles to within an ulp or so, not always exactly)
  EXPECT_NEAR(latency.at("process_start_time").as_double(), metric_sum(s, "process_start_time_seconds"), 1e-3);
  bool seen = false;
  for (const auto& r : latency.at("routes").as_array()) {
    if (r.at("route") != "app" || r.at("cluster") != "app-canary") continue;
    seen = true;
    const auto& up = r.at("upstream").as_object();
    EXPECT_EQ(up.at("count").to_number<std::uint64_t>(), 100u);
    EXPECT_EQ(up.at("codes").at("200").to_number<std::uint64_t>(), 90u);
    EXPECT_EQ(up.at("codes").at("503").to_number<std::uint64_t>(), 10u);
    std::uint64_t in_buckets = 0;
    for (const auto& b : up.at("buckets").as_array()) in_buckets += b.as_array()[2].to_number<std::uint64_t>();
    EXPECT_EQ(in_buckets, 100u);
  }
  EXPECT_TRUE(seen) << json::serialize(latency);
}

TEST(Metrics, GaugesFollowTheLivePolicyReloadsAndConnections) {
  auto primary = start_demo("p");
  auto canary = start_demo("c");
  std::string dir = make_temp_dir();
  write_file(dir + "/token", "s3cret\n");
  auto proxy = start_proxy(
      metrics_config(primary, canary, 90, 10, "admin: {address: 127.0.0.1:0, token_file: " + dir + "/token}\n"), 2);
  auto weight = [&](const std::string& cluster) {
    return metric_sum(parse_metrics(scrape(proxy)), "vane_route_weight", {{"route", "app"}, {"cluster", cluster}});
  };
  EXPECT_EQ(weight("app-primary"), 90);
  EXPECT_EQ(weight("app-canary"), 10);
  // /metrics is open like /ready (Prometheus sends no token); /stats/latency is not.
  EXPECT_EQ(fetch(proxy.admin_port, "GET", "/stats/latency").status, 401);
  auto auth = std::vector<std::pair<std::string, std::string>>{{"authorization", "Bearer s3cret"}};
  auto put = fetch(proxy.admin_port, "PUT", "/routes/app/traffic", auth,
                   R"({"split":[{"cluster":"app-primary","weight":70},{"cluster":"app-canary","weight":30}]})");
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(weight("app-primary"), 70);
  EXPECT_EQ(weight("app-canary"), 30);
  ASSERT_EQ(fetch(proxy.admin_port, "DELETE", "/routes/app/traffic", auth).status, 200);
  EXPECT_EQ(weight("app-canary"), 10);

  auto s = parse_metrics(scrape(proxy));
  EXPECT_EQ(metric_sum(s, "vane_config_generation"), 1);
  EXPECT_EQ(metric_sum(s, "vane_cluster_endpoints_healthy", {{"cluster", "app-primary"}}), 1);
  // A good reload moves the weight and the generation; a bad one counts an error and changes neither.
  std::string good = read_text_file(proxy.config_path);
  write_file(proxy.config_path, replace_all(good, "weight: 10}", "weight: 25}"));
  ASSERT_TRUE(eventually([&] { return weight("app-canary") == 25; }));
  write_file(proxy.config_path, good + "  - {name: broken, endpoints: [nowhere]}\n");
  ASSERT_TRUE(proxy.process->wait_for("config refused, keeping generation 2"));
  s = parse_metrics(scrape(proxy));
  EXPECT_EQ(metric_sum(s, "vane_config_generation"), 2);
  EXPECT_EQ(metric_sum(s, "vane_config_reloads_total", {{"result", "ok"}}), 1);
  EXPECT_EQ(metric_sum(s, "vane_config_reloads_total", {{"result", "error"}}), 1);
  EXPECT_EQ(metric_sum(s, "vane_route_weight", {{"cluster", "app-canary"}}), 25);
  expect_promtool_clean(scrape(proxy));

  // Open connections, per listener.
  auto active = [&] {
    return metric_sum(parse_metrics(scrape(proxy)), "vane_downstream_connections_active", {{"listener", "http"}});
  };
  {
    http_client a(proxy.port), b(proxy.port);
    a.get("/app");
    b.get("/app");
    EXPECT_TRUE(eventually([&] { return active() == 2; }));
  }
  EXPECT_TRUE(eventually([&] { return active() == 0; }));
}

TEST(Metrics, CountsAddUpExactlyWithFourWorkersUnderScrapes) {
  auto primary = start_demo("p");
  auto canary = start_demo("c", {"--error-percent", "20", "--error-status", "503"});
  auto proxy = start_proxy(metrics_config(primary, canary, 3, 1), 4);
  constexpr int threads = 4, per_thread = 250;
  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0};
  std::string last_bad;
  std::thread scraper([&] {
    double previous = 0;
    while (!done.load()) {
      auto s = parse_metrics(scrape(proxy));
      double total = metric_sum(s, "vane_requests_total");
      if (total < previous) last_bad = "requests went down from " + std::to_string(previous);
      // Within one scrape, a histogram's +Inf bucket equals its count.
      if (metric_sum(s, "vane_upstream_duration_seconds_bucket", {{"le", "+Inf"}}) !=
          metric_sum(s, "vane_upstream_duration_seconds_count"))
        last_bad = "+Inf bucket and count disagree";
      previous = total;
      scrapes.fetch_add(1);
    }
  });
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&] {
      http_client c(proxy.port);
      for (int i = 0; i < per_thread; ++i) {
        auto r = c.get("/app/" + std::to_string(i));
        ASSERT_TRUE(r.status == 200 || r.status == 503);
      }
    });
  }
  for (auto& t : clients) t.join();
  // At least one more scrape after the load, so the scraper saw the end.
  int seen = scrapes.load();
  EXPECT_TRUE(eventually([&] { return scrapes.load() > seen + 1; }));
  done = true;
  scraper.join();
  EXPECT_EQ(last_bad, "");
  constexpr double total = threads * per_thread;
  std::string text;
  // A request is counted right after its last byte went out: wait for the last ones.
  EXPECT_TRUE(eventually([&] {
    text = scrape(proxy);
    return metric_sum(parse_metrics(text), "vane_request_duration_seconds_count") == total;
  }));
  expect_promtool_clean(text);
  auto s = parse_metrics(text);
  EXPECT_EQ(metric_sum(s, "vane_requests_total"), total);
  EXPECT_EQ(metric_sum(s, "vane_upstream_responses_total"), total);
  EXPECT_EQ(metric_sum(s, "vane_request_duration_seconds_count"), total);
  EXPECT_EQ(metric_sum(s, "vane_upstream_duration_seconds_count"), total);
  auto served = primary.stats().at("requests").as_int64() + canary.stats().at("requests").as_int64();
  EXPECT_EQ(served, total);
  EXPECT_EQ(metric_sum(s, "vane_upstream_responses_total", {{"code", "503"}}), canary.stats().at("errors").as_int64());
  EXPECT_EQ(metric_sum(s, "vane_requests_total", {{"cluster", "app-canary"}}),
            canary.stats().at("requests").as_int64());
}

// A real Prometheus (Debian package) scrapes a real vane-proxy; Flagger's
// success-rate and p99 queries over vane's metrics give back what was sent.
TEST(Prometheus, ScrapesVaneAndAnswersFlaggerStyleQueries) {
  auto primary = start_demo("p");
  auto canary = start_demo("c", {"--error-percent", "10", "--error-status", "503", "--latency", "100ms"});
  auto proxy = start_proxy(metrics_config(primary, canary, 50, 50), 1);
  prometheus_server prom({"127.0.0.1:" + std::to_string(proxy.admin_port)});
  const std::string canary_total = R"(sum(vane_upstream_responses_total{route="app",cluster="app-canary"}))";
  // Two rounds of 200 requests (100 to the canary: 90 ok, 10 × 503 each), each
  // seen by a scrape: both series then grow in the same proportion, so the
  // rate() extrapolation cannot bend the ratio.
  for (int round = 1; round <= 2; ++round) {
    send_parallel(proxy.port, "/app", 200, 8);
    ASSERT_TRUE(eventually([&] { return prom.query_value(canary_total) == 100.0 * round; }, 60s))
        << "round " << round << ": " << json::serialize(prom.query(canary_total));
  }
  // Flagger's request-success-rate, written for vane's metric names.
  auto success = prom.query_value(
      R"(sum(rate(vane_upstream_responses_total{route="app",cluster="app-canary",code!~"5.."}[5m])) /
         sum(rate(vane_upstream_responses_total{route="app",cluster="app-canary"}[5m])) * 100)");
  ASSERT_TRUE(success);
  EXPECT_NEAR(*success, 90.0, 1e-9);
  // Flagger's request-duration: p99 in ms from the histogram's buckets.
  auto p99 = prom.query_value(
      R"(histogram_quantile(0.99, sum(rate(vane_upstream_duration_seconds_bucket{route="app",cluster="app-canary"}[5m])) by (le)) * 1000)");
  ASSERT_TRUE(p99);
  EXPECT_GE(*p99, 100.0);  // the canary answers after 100ms, so no p99 can be below

  // /stats/latency: the fine histogram gives a p99 inside the coarse bucket Prometheus interpolated in.
  vane::log_linear_histogram fine;
  auto latency = fetch_json(proxy.admin_port, "/stats/latency").as_object();
  for (const auto& r : latency.at("routes").as_array()) {
    if (r.at("route") != "app" || r.at("cluster") != "app-canary") continue;
    for (const auto& b : r.at("upstream").at("buckets").as_array())
      fine.add_bucket(vane::log_linear_histogram::index_of(b.as_array()[0].to_number<std::uint64_t>()),
                      b.as_array()[2].to_number<std::uint64_t>());
  }
  ASSERT_EQ(fine.count(), 200u);
  double fine_p99_ms = fine.quantile(0.99) / 1000;
  EXPECT_GE(fine_p99_ms, 100.0);
  const double bounds_ms[] = {100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000};
  double lo = 0, hi = 0;
  for (double b : bounds_ms) {
    if (*p99 <= b) {
      hi = b;
      break;
    }
    lo = b;
  }
  EXPECT_GE(fine_p99_ms, lo * 0.98) << "prometheus p99 " << *p99;  // within the fine histogram's 1/64 bucket width
  EXPECT_LE(fine_p99_ms, hi * 1.02) << "prometheus p99 " << *p99;
}

namespace {
// The access log's whole lines so far, as JSON objects.
std::vector<json::object> log_lines(const std::string& path) {
  std::vector<json::object> lines;
  const std::string text = read_text_file(path);
  std::size_t pos = 0, end;
  while ((end = text.find('\n', pos)) != std::string::npos) {
    lines.push_back(json::parse(text.substr(pos, end - pos)).as_object());
    pos = end + 1;
  }
  return lines;
}
}  // namespace

TEST(AccessLog, OneJsonLinePerRequestToAFile) {
  auto primary = start_demo("p");
  auto canary = start_demo("c");
  std::string dir = make_temp_dir();
  std::string log_path = dir + "/access.log";
  auto proxy = start_proxy(metrics_config(primary, canary, 1, 0), 2, {"--access-log", log_path});
  {
    http_client c(proxy.port);
    EXPECT_EQ(c.request("GET", "/app/one", {{"x-request-id", "req-1"}}).status, 200);
    EXPECT_EQ(c.request("POST", "/app/upload", {{"content-type", "text/plain"}}, std::string(1000, 'b')).status, 200);
    EXPECT_EQ(c.get("/nothing").status, 404);
  }
  std::vector<json::object> lines;
  ASSERT_TRUE(eventually([&] { return (lines = log_lines(log_path)).size() == 3; })) << read_text_file(log_path);
  EXPECT_EQ(lines[0].at("route").as_string(), "app");
  EXPECT_EQ(lines[0].at("cluster").as_string(), "app-primary");
  EXPECT_EQ(lines[0].at("status").as_int64(), 200);
  EXPECT_EQ(lines[0].at("request_id").as_string(), "req-1");
  EXPECT_EQ(lines[0].at("method").as_string(), "GET");
  EXPECT_EQ(lines[0].at("protocol").as_string(), "HTTP/1.1");
  EXPECT_EQ(lines[0].at("path").as_string(), "/app/one");
  EXPECT_EQ(lines[0].at("upstream").as_string(), primary.address());
  EXPECT_GT(lines[0].at("bytes_sent").as_int64(), 0);
  EXPECT_GE(lines[0].at("duration_ms").as_double(), 0.0);
  EXPECT_EQ(std::string(lines[0].at("time").as_string()).size(), 24u);  // 2026-11-24T18:00:00.000Z
  EXPECT_EQ(lines[1].at("method").as_string(), "POST");
  EXPECT_EQ(lines[1].at("bytes_received").as_int64(), 1000);
  EXPECT_EQ(lines[1].at("request_id"), nullptr);
  EXPECT_EQ(lines[2].at("route").as_string(), "none");
  EXPECT_EQ(lines[2].at("status").as_int64(), 404);
  EXPECT_EQ(lines[2].at("upstream"), nullptr);
  auto s = parse_metrics(scrape(proxy));
  EXPECT_EQ(metric_sum(s, "vane_access_log_dropped_total"), 0);
}

TEST(AccessLog, ToStdout) {
  auto primary = start_demo("p");
  auto canary = start_demo("c");
  auto proxy = start_proxy(metrics_config(primary, canary, 1, 0), 1, {"--access-log", "-"});
  EXPECT_EQ(fetch(proxy.port, "GET", "/app/stdout-check").status, 200);
  auto line = proxy.process->wait_for(R"("path":"/app/stdout-check")");
  ASSERT_TRUE(line) << proxy.process->output();
  EXPECT_EQ(json::parse(*line).at("status").as_int64(), 200);
}

// k8s/grafana's dashboard: every query is valid PromQL over metrics vane
// exports, and those about traffic answer from a real Prometheus scraping a
// real proxy (weight, success rate, p99 per version, requests by status).
TEST(Grafana, DashboardQueriesAnswerFromARealPrometheus) {
  auto primary = start_demo("p");
  auto canary = start_demo("c", {"--error-percent", "10", "--error-status", "503"});
  auto proxy = start_proxy(metrics_config(primary, canary, 50, 50), 1);
  auto dashboard = json::parse(read_text_file(source_dir() + "/k8s/grafana/vane-canary.json")).as_object();
  std::vector<std::string> exprs;
  for (const auto& panel : dashboard.at("panels").as_array())
    for (const auto& t : panel.at("targets").as_array()) exprs.emplace_back(t.at("expr").as_string());
  ASSERT_GE(exprs.size(), 8u);
  // The names they read are families that the proxy or vane-control export.
  std::string families = scrape(proxy);
  auto control_dir = make_temp_dir();
  child_process control(control_binary(), {"--canaries", control_dir, "--listen", "127.0.0.1:0"});
  auto line = control.wait_for("vane-control listening on");
  ASSERT_TRUE(line) << control.output();
  families += fetch(port_of_line(*line), "GET", "/metrics").body;
  for (const auto& e : exprs)
    for (std::size_t at = e.find("vane_"); at != std::string::npos; at = e.find("vane_", at + 1)) {
      std::size_t end = e.find_first_not_of("abcdefghijklmnopqrstuvwxyz_", at);
      std::string name = e.substr(at, end - at);
      if (name.ends_with("_bucket")) name.resize(name.size() - 7);
      EXPECT_NE(families.find("# TYPE " + name + " "), std::string::npos) << name << " in " << e;
    }
  prometheus_server prom({"127.0.0.1:" + std::to_string(proxy.admin_port)});
  // Traffic until Prometheus holds two scrapes of it, so rate() has data.
  const std::string seen = R"(count_over_time(vane_requests_total{route="app",cluster="app-canary",code="200"}[5m]))";
  ASSERT_TRUE(eventually(
      [&] {
        send_parallel(proxy.port, "/app", 100, 4);
        auto n = prom.query_value(seen);
        return n && *n >= 2;
      },
      90s))
      << json::serialize(prom.query(seen));
  for (auto e : exprs) {
    e = replace_all(replace_all(e, "$route", "app"), "$__rate_interval", "5m");
    auto answer = prom.query(e);  // a PromQL error fails inside query()
    if (!answer.is_object()) continue;
    bool traffic = e.find("vane_canary") == std::string::npos && e.find("mirror") == std::string::npos &&
                   e.find("retries") == std::string::npos && e.find("connect_errors") == std::string::npos;
    if (traffic) {
      EXPECT_FALSE(answer.at("result").as_array().empty()) << e;
    }
  }
  // The weight panel gives each version its share of the split: 50% and 50%.
  auto shares = prom.query(replace_all(exprs[0], "$route", "app"));
  ASSERT_TRUE(shares.is_object());
  ASSERT_EQ(shares.at("result").as_array().size(), 2u) << json::serialize(shares);
  for (const auto& series : shares.at("result").as_array())
    EXPECT_EQ(series.at("value").as_array()[1].as_string(), "50") << json::serialize(shares);
}

// The access log's byte counts: an HTTP/2 answer's body counts as an HTTP/1.1
// one's does, and a body sent again to the fallback cluster counts once.
TEST(AccessLog, Http2AnswersAndResentBodiesCountTheirBytesOnce) {
  auto primary = start_demo("p");
  auto failing = start_demo("c", {"--error-percent", "100", "--error-status", "503"});
  std::string dir = make_temp_dir();
  std::string log_path = dir + "/access.log";
  auto proxy = start_proxy(half_split_config(primary.address(), failing.address(),
                                             "        fallback: {from: app-canary, to: app-primary}\n"),
                           1, {"--access-log", log_path});
  auto [code, size] =
      run("/usr/bin/curl", {"-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{size_download}",
                            "http://127.0.0.1:" + std::to_string(proxy.port) + "/h2-bytes"});
  ASSERT_EQ(code, 0) << size;
  {
    http_client c(proxy.port);
    for (int i = 0; i < 2; ++i)  // one of the two goes to the canary first, and falls back with its body
      EXPECT_EQ(c.request("PUT", "/up", {}, std::string(3000, 'x')).status, 200);
  }
  EXPECT_GE(metric_now(proxy, R"(vane_fallbacks_total{route="app",from="app-canary",to="app-primary"})"), 1);
  std::vector<json::object> lines;
  ASSERT_TRUE(eventually([&] { return (lines = log_lines(log_path)).size() == 3; })) << read_text_file(log_path);
  EXPECT_EQ(lines[0].at("protocol").as_string(), "HTTP/2");
  EXPECT_EQ(lines[0].at("path").as_string(), "/h2-bytes");
  EXPECT_GT(lines[0].at("bytes_sent").as_int64(), 0);
  EXPECT_EQ(std::to_string(lines[0].at("bytes_sent").as_int64()), size);
  EXPECT_EQ(lines[1].at("bytes_received").as_int64(), 3000);
  EXPECT_EQ(lines[2].at("bytes_received").as_int64(), 3000);
}

// logrotate's create mode: the file moved away, SIGUSR1, and the next lines go to a new file at the path.
TEST(AccessLog, Sigusr1OpensTheFileAgainAfterARotation) {
  auto primary = start_demo("p");
  auto canary = start_demo("c");
  std::string dir = make_temp_dir();
  std::string log_path = dir + "/access.log";
  auto proxy = start_proxy(metrics_config(primary, canary, 1, 0), 1, {"--access-log", log_path});
  EXPECT_EQ(fetch(proxy.port, "GET", "/app/before").status, 200);
  ASSERT_TRUE(eventually([&] { return read_text_file(log_path).find("/app/before") != std::string::npos; }));
  std::filesystem::rename(log_path, log_path + ".1");
  proxy.process->signal(SIGUSR1);
  ASSERT_TRUE(proxy.process->wait_for("access log: " + log_path + " opened again")) << proxy.process->output();
  EXPECT_EQ(fetch(proxy.port, "GET", "/app/after").status, 200);
  ASSERT_TRUE(eventually([&] {
    return std::filesystem::exists(log_path) && read_text_file(log_path).find("/app/after") != std::string::npos;
  })) << proxy.process->output();
  EXPECT_EQ(read_text_file(log_path).find("/app/before"), std::string::npos);
  EXPECT_EQ(read_text_file(log_path + ".1").find("/app/after"), std::string::npos);
}
