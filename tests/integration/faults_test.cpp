// Faults under load (issue "Reliability"), through the real binaries on
// 127.0.0.1: an open-loop `vane-bench load` runs against vane-proxy while
// the test reloads it 100 times, PUTs its traffic 1,000 times, kills or
// breaks an upstream, or makes the canary vanish; then the counts are
// compared: requests sent, answered, errors by cause. Nothing may be lost
// that the fault itself did not cause, and every error the client saw must
// be one the proxy answered on purpose (a counted 5xx, never a dropped
// connection or a timeout).
//
// Each scenario prints one "faults:" line with its figures. The load lasts
// VANE_FAULT_SECONDS (default 4) per phase; tests/faults.sh runs them longer.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <thread>

#include "tests/support/fixtures.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/prometheus.hpp"

using namespace vane::test;
namespace json = boost::json;

namespace {

int fault_seconds() {
  const char* s = std::getenv("VANE_FAULT_SECONDS");
  int n = s ? std::atoi(s) : 0;
  return n > 0 ? n : 4;
}

// An open-loop load running in its own process while the test injects faults.
class background_load {
 public:
  background_load(std::uint16_t port, int rate, int seconds) : dir_(make_temp_dir()) {
    process_ = std::make_unique<child_process>(
        bench_binary(), std::vector<std::string>{"load", "--url", "http://127.0.0.1:" + std::to_string(port) + "/",
                                                 "--rate", std::to_string(rate), "--connections", "16", "--duration",
                                                 std::to_string(seconds) + "s", "--timeout", "10s", "--quiet", "--json",
                                                 dir_ + "/load.json"});
  }
  bool running() { return !process_->wait_exit(std::chrono::milliseconds(0)); }
  json::object finish() {
    auto code = process_->wait_exit(std::chrono::seconds(120));
    EXPECT_TRUE(code.has_value()) << "vane-bench load did not finish";
    return json::parse(read_text_file(dir_ + "/load.json")).as_object();
  }

 private:
  std::string dir_;
  std::unique_ptr<child_process> process_;
};

std::int64_t num(const json::object& o, std::string_view k) { return o.at(k).to_number<std::int64_t>(); }

// Runs `fault` on a thread while loads of `phase_seconds` follow each other
// until it is done (at least `min_seconds` of load), and sums their counts:
// however slow the machine (or a sanitizer) makes the fault, it happens
// under load from start to end.
json::object load_during(std::uint16_t port, int rate, int min_seconds, const std::function<void()>& fault) {
  std::atomic<bool> done{false};
  std::thread injector([&] {
    fault();
    done = true;
  });
  json::object total{
      {"sent", 0},
      {"completed", 0},
      {"phases", 0},
      {"errors",
       json::object{
           {"connect", 0}, {"closed", 0}, {"timeout", 0}, {"bad_response", 0}, {"status_4xx", 0}, {"status_5xx", 0}}}};
  const auto started = std::chrono::steady_clock::now();
  while (!done || std::chrono::steady_clock::now() - started < std::chrono::seconds(min_seconds)) {
    background_load phase(port, rate, 2);
    auto r = phase.finish();
    total["sent"] = num(total, "sent") + num(r, "sent");
    total["completed"] = num(total, "completed") + num(r, "completed");
    total["phases"] = num(total, "phases") + 1;
    auto& e = total["errors"].as_object();
    for (const auto& [k, v] : r.at("errors").as_object())
      e[k] = e[k].to_number<std::int64_t>() + v.to_number<std::int64_t>();
  }
  injector.join();
  return total;
}
std::int64_t err(const json::object& o, std::string_view k) { return num(o.at("errors").as_object(), k); }
std::int64_t errors_total(const json::object& o) {
  std::int64_t n = 0;
  for (const auto& [k, v] : o.at("errors").as_object()) n += v.to_number<std::int64_t>();
  return n;
}

void report(const std::string& scenario, const json::object& r, const std::string& extra = "") {
  std::printf(
      "faults: %-34s sent %lld, answered %lld, errors %lld (connect %lld, closed %lld, timeout %lld, "
      "5xx %lld)%s%s\n",
      scenario.c_str(), static_cast<long long>(num(r, "sent")), static_cast<long long>(num(r, "completed")),
      static_cast<long long>(errors_total(r)), static_cast<long long>(err(r, "connect")),
      static_cast<long long>(err(r, "closed")), static_cast<long long>(err(r, "timeout")),
      static_cast<long long>(err(r, "status_5xx")), extra.empty() ? "" : "; ", extra.c_str());
  std::fflush(stdout);
}

// Nothing dropped: every request sent was answered, none by a broken connection or a timeout.
void expect_nothing_dropped(const json::object& r) {
  EXPECT_EQ(num(r, "sent"), num(r, "completed"));
  EXPECT_EQ(err(r, "connect"), 0);
  EXPECT_EQ(err(r, "closed"), 0);
  EXPECT_EQ(err(r, "timeout"), 0);
  EXPECT_EQ(err(r, "bad_response"), 0);
  EXPECT_GT(num(r, "sent"), 0);
}

double metric(const proxy_instance& p, const std::string& name, const std::map<std::string, std::string>& labels = {}) {
  return metric_sum(parse_metrics(fetch(p.admin_port, "GET", "/metrics").body), name, labels);
}

std::string split_config(const std::string& primary, const std::string& canary, int primary_weight,
                         const std::string& cluster_extra = "") {
  return R"(
listeners:
  - name: http
    address: 127.0.0.1:0
    routes:
      - name: app
        split:
          - {cluster: primary, weight: )" +
         std::to_string(primary_weight) + R"(}
          - {cluster: canary, weight: )" +
         std::to_string(100 - primary_weight) + R"(}
        retries: {attempts: 2, on: [connect-failure, reset]}
clusters:
  - {name: primary, endpoints: [)" +
         primary + R"(]}
  - name: canary
    endpoints: [)" +
         canary + "]\n" + cluster_extra;
}

}  // namespace

TEST(FaultsUnderLoad, AHundredReloadsUnderLoadLoseNothing) {
  auto primary = start_demo("primary");
  auto canary = start_demo("canary");
  auto proxy = start_proxy(split_config(primary.address(), canary.address(), 90), 2);
  // Written next to the config and renamed over it, as editors and the
  // ConfigMap swap do; each new content is one reload (the file watch).
  const std::string tmp = proxy.config_path + ".tmp";
  const std::string base = read_text_file(proxy.config_path);
  int reloads = 0;
  auto r = load_during(proxy.port, 400, fault_seconds(), [&] {
    for (int i = 1; i <= 100; ++i) {
      const int w = i % 2 ? 80 : 90;
      std::string text = replace_all(base, "weight: 90}", "weight: " + std::to_string(w) + "}");
      text = replace_all(text, "weight: 10}", "weight: " + std::to_string(100 - w) + "}");
      write_file(tmp, "# reload " + std::to_string(i) + "\n" + text);
      std::filesystem::rename(tmp, proxy.config_path);
      if (!eventually([&] { return fetch_json(proxy.admin_port, "/config").at("generation").as_int64() == i + 1; })) {
        ADD_FAILURE() << "reload " << i << " did not take effect";
        return;
      }
      ++reloads;
    }
  });
  report("100 reloads", r, std::to_string(reloads) + " reloads");
  expect_nothing_dropped(r);
  EXPECT_EQ(errors_total(r), 0);
  EXPECT_EQ(metric(proxy, "vane_config_reloads_total", {{"result", "ok"}}), 100);
  EXPECT_EQ(metric(proxy, "vane_config_reloads_total", {{"result", "error"}}), 0);
}

TEST(FaultsUnderLoad, AThousandTrafficPutsUnderLoadLoseNothing) {
  auto primary = start_demo("primary");
  auto canary = start_demo("canary");
  auto proxy = start_proxy(split_config(primary.address(), canary.address(), 90), 2);
  int ok = 0;
  auto r = load_during(proxy.port, 400, fault_seconds(), [&] {
    http_client admin(proxy.admin_port);
    for (int i = 0; i < 1000; ++i) {
      const int w = i % 101;
      auto res = admin.request("PUT", "/routes/app/traffic", {{"content-type", "application/json"}},
                               R"({"split":[{"cluster":"primary","weight":)" + std::to_string(100 - w) +
                                   R"(},{"cluster":"canary","weight":)" + std::to_string(w) + "}]}");
      ok += res.status == 200;
    }
  });
  EXPECT_EQ(ok, 1000);
  report("1000 traffic PUTs", r, std::to_string(ok) + " PUTs answered 200");
  expect_nothing_dropped(r);
  EXPECT_EQ(errors_total(r), 0);
  auto route = fetch_json(proxy.admin_port, "/routes/app");
  EXPECT_EQ(route.at("split").as_array()[1].at("weight").as_int64(), 999 % 101);
  // Every request was served by one of the two versions, and counted once.
  EXPECT_EQ(primary.stats().at("requests").as_int64() + canary.stats().at("requests").as_int64(), num(r, "completed"));
}

TEST(FaultsUnderLoad, AnUpstreamThatDiesUnderLoadIsRetriedAround) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto canary = start_demo("canary");
  auto proxy = start_proxy(split_config(a.address() + ", " + b.address(), canary.address(), 100), 2);
  const int seconds = fault_seconds();
  background_load load(proxy.port, 400, seconds);
  // A third of the way in, one of the primary's two endpoints dies (SIGKILL: no FIN for what it was doing).
  ASSERT_TRUE(
      eventually([&] { return b.stats().at("requests").as_int64() > 400 * seconds / 6; }, std::chrono::seconds(60)));
  const auto b_before = b.stats().at("requests").as_int64();
  a.process->signal(SIGKILL);
  auto r = load.finish();
  const auto b_after = b.stats().at("requests").as_int64();
  double retries = metric(proxy, "vane_retries_total");
  report("an endpoint killed", r,
         std::to_string(b_after - b_before) + " answered by the other endpoint after the kill, " +
             std::to_string(static_cast<long long>(retries)) + " retries");
  expect_nothing_dropped(r);
  // Pooled connections to the dead endpoint are found closed before use, a
  // refused connect moves on to the next endpoint, and a GET caught in the
  // kill is retried: the client sees nothing.
  EXPECT_EQ(err(r, "status_5xx"), 0);
  EXPECT_GT(b_after - b_before, num(r, "sent") / 3);
}

TEST(FaultsUnderLoad, AnUpstreamThatResetsOrHangsCostsOnlyCounted5xx) {
  auto resets = start_demo("resets", {"--reset-percent", "20"});
  auto hangs = start_demo("hangs", {"--latency", "60s"});
  auto good = start_demo("good");
  auto canary = start_demo("canary");
  std::string yaml =
      split_config(resets.address() + ", " + hangs.address() + ", " + good.address(), canary.address(), 100);
  yaml = replace_all(
      yaml, "retries: {attempts: 2, on: [connect-failure, reset]}",
      "retries: {attempts: 3, per_try_timeout: 300ms, on: [gateway-error], budget: {percent: 100, min: 16}}");
  auto proxy = start_proxy(yaml, 1);
  background_load load(proxy.port, 200, fault_seconds());
  auto r = load.finish();
  double retries = metric(proxy, "vane_retries_total");
  double proxy_5xx = 0;
  for (const char* code : {"502", "503", "504"})
    proxy_5xx += metric(proxy, "vane_requests_total", {{"route", "app"}, {"code", code}});
  report("endpoints resetting 20% and hanging", r,
         std::to_string(static_cast<long long>(retries)) + " retries, " +
             std::to_string(good.stats().at("requests").as_int64()) + " answered by the good endpoint");
  expect_nothing_dropped(r);
  // Two endpoints of three fail (one in five tries, and every try): retries
  // absorb nearly all of it; what is left reaches the client as the proxy's
  // own counted 502/504, never as a broken connection.
  EXPECT_EQ(err(r, "status_5xx"), static_cast<std::int64_t>(proxy_5xx));
  EXPECT_LT(err(r, "status_5xx") * 20, num(r, "sent")) << "more than 5% failed";
  EXPECT_GT(retries, num(r, "sent") / 4);
}

TEST(FaultsUnderLoad, ACanaryThatVanishesMidRolloutCostsOnlyItsShareUntilRolledBack) {
  auto primary = start_demo("primary");
  auto canary = start_demo("canary");
  auto proxy =
      start_proxy(split_config(primary.address(), canary.address(), 80,
                               "    health_check: {path: /healthz, interval: 200ms, unhealthy: 1, healthy: 1}\n"),
                  2);
  const int seconds = fault_seconds();
  background_load load(proxy.port, 300, seconds);
  ASSERT_TRUE(eventually([&] { return canary.stats().at("requests").as_int64() > 300 * seconds / 5 / 4; },
                         std::chrono::seconds(60)));
  canary.process->signal(SIGKILL);  // the canary's only pod is gone
  auto during = load.finish();
  double proxy_5xx = 0;
  for (const char* code : {"502", "503", "504"})
    proxy_5xx += metric(proxy, "vane_requests_total", {{"route", "app"}, {"cluster", "canary"}, {"code", code}});
  report("the canary killed mid-rollout", during,
         std::to_string(static_cast<long long>(proxy_5xx)) + " answered 5xx by the proxy for the canary");
  expect_nothing_dropped(during);
  // The errors are the canary's share only, each one a counted 5xx; the primary lost nothing.
  EXPECT_EQ(err(during, "status_5xx"), static_cast<std::int64_t>(proxy_5xx));
  EXPECT_EQ(metric(proxy, "vane_requests_total", {{"route", "app"}, {"cluster", "primary"}, {"code", "502"}}), 0);
  EXPECT_LT(err(during, "status_5xx") * 4, num(during, "sent"));

  // The rollback vane-control would do: all weight to the primary. From then on, nothing fails.
  auto res = fetch(proxy.admin_port, "PUT", "/routes/app/traffic", {{"content-type", "application/json"}},
                   R"({"split":[{"cluster":"primary","weight":100},{"cluster":"canary","weight":0}]})");
  ASSERT_EQ(res.status, 200) << res.body;
  background_load after(proxy.port, 300, seconds);
  auto r = after.finish();
  report("after the rollback", r);
  expect_nothing_dropped(r);
  EXPECT_EQ(errors_total(r), 0);
}
