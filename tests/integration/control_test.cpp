// vane-control end to end: real demos, a real vane-proxy, the real
// controller with a Canary of 1-second ticks, and steady load through the
// proxy. Tests wait for the controller's event lines, never for time.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <thread>

#include "tests/support/fixtures.hpp"
#include "tests/support/grpc.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/prometheus.hpp"

using namespace vane::test;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

std::string canary_doc(const proxy_instance& proxy, const std::string& revision, const std::string& analysis_extra) {
  return R"(apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: app, namespace: test}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}
  revision: ")" +
         revision + R"("
  route: app
  proxies: [http://127.0.0.1:)" +
         std::to_string(proxy.admin_port) + R"(]
  promote: {command: ["true"], timeout: 30s}
  analysis:
    interval: 1s
)" + analysis_extra;
}

// Sends requests through the proxy until stopped; counts answers and failures to answer.
struct load {
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, not_answered{0}, errors{0};
  std::thread thread;
  explicit load(std::uint16_t port) {
    thread = std::thread([this, port] {
      while (!stop.load()) {
        try {
          http_client c(port);
          for (int i = 0; i < 100 && !stop.load(); ++i) {
            auto r = c.get("/");
            ++answered;
            if (r.status >= 500) ++errors;
          }
        } catch (const std::exception&) {
          ++not_answered;
        }
      }
    });
  }
  void finish() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
  ~load() { finish(); }
};

struct controller_instance {
  std::string dir;
  std::unique_ptr<child_process> process;
  std::uint16_t port = 0;
};

// Starts the controller as Flagger meets a Canary: first with revision "baseline" (the primary's; first
// sight initializes, no run), then with the document's own revision, which starts the run.
controller_instance start_controller(const std::string& doc) {
  controller_instance c;
  c.dir = make_temp_dir();
  std::filesystem::create_directories(c.dir + "/canaries");
  const std::string revision_key = "  revision: \"";
  std::string baseline = doc;
  if (auto at = doc.find(revision_key); at != std::string::npos && doc.compare(at + revision_key.size(), 1, "\"") != 0)
    baseline = doc.substr(0, at) + revision_key + "baseline" + doc.substr(doc.find('"', at + revision_key.size()));
  write_file(c.dir + "/canaries/app.yaml", baseline);
  c.process = std::make_unique<child_process>(
      control_binary(), std::vector<std::string>{"--canaries", c.dir + "/canaries", "--listen", "127.0.0.1:0",
                                                 "--state", c.dir + "/state.json"});
  auto line = c.process->wait_for("vane-control listening on");
  if (!line)
    ADD_FAILURE() << c.process->output();
  else
    c.port = port_of_line(*line);
  if (!c.process->wait_for("Initialization done! app.test")) ADD_FAILURE() << c.process->output();
  if (baseline != doc) {  // a new revision: the run starts (written whole: the controller polls the file)
    write_file(c.dir + "/canaries/app.yaml.tmp", doc);
    std::filesystem::rename(c.dir + "/canaries/app.yaml.tmp", c.dir + "/canaries/app.yaml");
  }
  return c;
}

json::object route_policy(const proxy_instance& p) { return fetch_json(p.admin_port, "/routes/app").as_object(); }

}  // namespace

TEST(Control, AHealthyRevisionWalksTheWeightsOnTwoProxiesAndIsPromoted) {
  auto p = start_demo("1.0");
  auto c = start_demo("2.0");
  auto a = start_proxy(canary_proxy_config(p, c), 1);
  auto b = start_proxy(canary_proxy_config(p, c), 1);
  load traffic_a(a.port);
  load traffic_b(b.port);
  std::string doc = canary_doc(a, "2.0", R"(    threshold: 2
    maxWeight: 50
    stepWeight: 10
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 2s}
      - {name: request-duration, thresholdRange: {max: 5000}, interval: 2s}
)");
  doc = replace_all(doc, "proxies: [http://127.0.0.1:" + std::to_string(a.admin_port) + "]",
                    "proxies: [http://127.0.0.1:" + std::to_string(a.admin_port) +
                        ", http://127.0.0.1:" + std::to_string(b.admin_port) + "]");
  auto ctl = start_controller(doc);
  auto done = ctl.process->wait_for("Promotion completed! Scaling down app.test", 120s);
  ASSERT_TRUE(done) << ctl.process->output();
  std::string out = ctl.process->output();
  auto at = [&](const std::string& s) { return out.find(s); };
  ASSERT_NE(at("New revision detected! Scaling up app.test"), std::string::npos) << out;
  std::size_t last = at("Starting canary analysis for app.test");
  for (int w = 10; w <= 50; w += 10) {
    std::size_t here = at("Advance app.test canary weight " + std::to_string(w));
    ASSERT_NE(here, std::string::npos) << w << "\n" << out;
    EXPECT_LT(last, here) << w;
    last = here;
  }
  EXPECT_LT(last, at("Copying app.test template spec to app-primary.test"));
  EXPECT_LT(at("Copying app.test template spec"), at("Routing all traffic to primary"));
  EXPECT_EQ(at("Rolling back"), std::string::npos);
  // The final state on both proxies: everything to the primary.
  for (const auto* proxy : {&a, &b})
    EXPECT_EQ(json::serialize(route_policy(*proxy).at("split")),
              R"([{"cluster":"app-primary","weight":100},{"cluster":"app-canary","weight":0}])");
  EXPECT_GT(c.stats().at("requests").as_int64(), 0);  // the canary did take traffic
  auto status = fetch_json(ctl.port, "/canaries/app").as_object();
  EXPECT_EQ(status.at("phase").as_string(), "Succeeded");
  EXPECT_NE(read_text_file(ctl.dir + "/state.json").find(R"("phase":"Succeeded")"), std::string::npos);
  traffic_a.finish();
  traffic_b.finish();
  // Clients saw no error and no request was lost while the weights moved.
  EXPECT_EQ(traffic_a.not_answered.load() + traffic_b.not_answered.load(), 0);
  EXPECT_EQ(traffic_a.errors.load() + traffic_b.errors.load(), 0);
}

TEST(Control, AFailingRevisionIsRolledBackAlertedAndShown) {
  auto p = start_demo("1.0");
  auto c = start_demo("2.0", {"--error-percent", "40", "--error-status", "503"});
  auto slack = start_demo("slack");
  auto teams = start_demo("teams");
  auto generic = start_demo("generic");
  auto discord = start_demo("discord");
  auto proxy = start_proxy(canary_proxy_config(p, c), 1);
  load traffic(proxy.port);
  std::string doc = canary_doc(proxy, "2.0", R"(    threshold: 2
    maxWeight: 60
    stepWeight: 20
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 2s}
    alerts:
      - {name: on-call, severity: error, providerRef: {name: slack}}  # (the canary's namespace)
      - {name: team, severity: error, providerRef: {name: teams, namespace: test}}
      - {name: log, severity: info, providerRef: {name: generic, namespace: test}}
      - {name: chat, severity: warn, providerRef: {name: discord, namespace: test}}
)");
  for (auto [name, type, demo] :
       {std::tuple{"slack", "slack", &slack}, std::tuple{"teams", "msteams", &teams},
        std::tuple{"generic", "generic", &generic}, std::tuple{"discord", "discord", &discord}})
    doc += std::string("---\napiVersion: flagger.app/v1beta1\nkind: AlertProvider\nmetadata: {name: ") + name +
           ", namespace: test}\nspec: {type: " + type + ", channel: ops, address: http://" + demo->address() +
           "/alert}\n";
  auto ctl = start_controller(doc);
  ASSERT_TRUE(ctl.process->wait_for("Canary failed! Scaling down app.test", 120s)) << ctl.process->output();
  std::string out = ctl.process->output();
  EXPECT_NE(out.find("Halt app.test advancement success rate"), std::string::npos) << out;
  EXPECT_NE(out.find("Rolling back app.test failed checks threshold reached 2"), std::string::npos) << out;
  EXPECT_EQ(out.find("Promotion completed"), std::string::npos);
  EXPECT_EQ(json::serialize(route_policy(proxy).at("split")),
            R"([{"cluster":"app-primary","weight":100},{"cluster":"app-canary","weight":0}])");
  EXPECT_EQ(fetch_json(ctl.port, "/canaries/app").at("phase").as_string(), "Failed");
  // Alerts: each provider got its service's JSON; severity error skips the info ones.
  ASSERT_TRUE(eventually([&] { return slack.stats().at("requests").as_int64() == 1; }));
  auto slack_body = json::parse(slack.stats().at("last_body").as_string()).as_object();
  EXPECT_EQ(slack_body.at("channel").as_string(), "ops");
  EXPECT_NE(std::string(slack_body.at("text").as_string()).find("app.test: Canary analysis failed"), std::string::npos);
  ASSERT_TRUE(eventually([&] { return teams.stats().at("requests").as_int64() == 1; }));
  EXPECT_EQ(json::parse(teams.stats().at("last_body").as_string()).at("@type").as_string(), "MessageCard");
  ASSERT_TRUE(eventually([&] { return discord.stats().at("requests").as_int64() == 1; }));  // warn: the rollback only
  EXPECT_NE(std::string(json::parse(discord.stats().at("last_body").as_string()).at("content").as_string())
                .find("Canary analysis failed"),
            std::string::npos);
  ASSERT_TRUE(eventually([&] { return generic.stats().at("requests").as_int64() == 2; }));  // new revision + rollback
  auto generic_body = json::parse(generic.stats().at("last_body").as_string()).as_object();
  EXPECT_EQ(generic_body.at("severity").as_string(), "error");
  EXPECT_EQ(generic_body.at("phase").as_string(), "Failed");
  // Its metrics (promtool-clean) and the status table say so too.
  auto metrics = fetch(ctl.port, "GET", "/metrics").body;
  EXPECT_NE(metrics.find(R"(vane_canary_status{name="app",namespace="test"} 2)"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(vane_canary_failures_total{name="app",namespace="test"} 1)"), std::string::npos);
  bool ok = false;
  EXPECT_EQ(promtool_check(metrics, ok), "");
  EXPECT_TRUE(ok);
  auto [code, table] = run(control_binary(), {"status", "--server", "http://127.0.0.1:" + std::to_string(ctl.port)});
  EXPECT_EQ(code, 0);
  EXPECT_NE(table.find("NAME"), std::string::npos) << table;
  EXPECT_NE(table.find("app.test"), std::string::npos) << table;
  EXPECT_NE(table.find("Failed"), std::string::npos) << table;
  EXPECT_NE(table.find("[--------------------]    0%"), std::string::npos) << table;
}

TEST(Control, AbortRollsBackWithinSecondsOnAnErrorBurst) {
  auto p = start_demo("1.0");
  auto c = start_demo("2.0", {"--error-percent", "100", "--error-status", "500"});
  auto proxy = start_proxy(canary_proxy_config(p, c), 1);
  load traffic(proxy.port);
  // Threshold and metrics would take long; abort acts on the first second of errors.
  auto ctl = start_controller(canary_doc(proxy, "2.0", R"(    threshold: 100
    maxWeight: 50
    stepWeight: 50
    abort: {maxErrorRate: 50, minRequests: 5}
)"));
  ASSERT_TRUE(ctl.process->wait_for("Canary failed! Scaling down app.test", 120s)) << ctl.process->output();
  EXPECT_NE(ctl.process->output().find("Rolling back app.test error rate 100.00% >= 50%"), std::string::npos)
      << ctl.process->output();
}

// vane's guard and fallback from a Canary: the proxy stops the failing canary
// itself, vane-control rolls back on the trip it reports, and with the
// fallback no client sees an error, while the canary's failures are counted.
TEST(Control, AGuardTripRollsBackAndWithFallbackNoClientSeesAnError) {
  auto p = start_demo("1.0");
  auto c = start_demo("2.0", {"--error-percent", "100", "--error-status", "503"});
  auto proxy = start_proxy(canary_proxy_config(p, c), 2);
  load traffic(proxy.port);
  // No metric and a high threshold: only the guard can end this run.
  auto ctl = start_controller(canary_doc(proxy, "2.0", R"(    threshold: 100
    maxWeight: 50
    stepWeight: 20
    guard: {maxErrorPercent: 20, minRequests: 10, window: 10m}
    fallback: true
)"));
  ASSERT_TRUE(ctl.process->wait_for("Canary failed! Scaling down app.test", 120s)) << ctl.process->output();
  const std::string out = ctl.process->output();
  EXPECT_NE(out.find("Rolling back app.test proxy guard tripped on 1/1 proxies (error rate 100.00% >= 20%)"),
            std::string::npos)
      << out;
  traffic.finish();
  EXPECT_GT(traffic.answered.load(), 0);
  EXPECT_EQ(traffic.errors.load(), 0);
  EXPECT_EQ(traffic.not_answered.load(), 0);
  // The canary's failures were counted as its own, and every one fell back: at least the guard's 10 (more
  // when a step's PUT, which starts the guard's count afresh, came between two of them on a slow box).
  const std::string metrics = fetch(proxy.admin_port, "GET", "/metrics").body;
  EXPECT_NE(metrics.find(R"(vane_guard_trips_total{route="app",cluster="app-canary"} 1)"), std::string::npos);
  const double failed =
      metric_now(proxy, R"(vane_upstream_responses_total{route="app",cluster="app-canary",code="503"})");
  EXPECT_GE(failed, 10) << metrics;
  EXPECT_EQ(metric_now(proxy, R"(vane_fallbacks_total{route="app",from="app-canary",to="app-primary"})"), failed)
      << metrics;
  // The run removed both from the proxy, and the trip with them.
  auto route = route_policy(proxy);
  EXPECT_TRUE(route.at("guard").is_null()) << json::serialize(route);
  EXPECT_TRUE(route.at("fallback").is_null()) << json::serialize(route);
  EXPECT_EQ(route.at("split").as_array()[1].at("weight").as_int64(), 0);
  // status shows the guard as the proxies last reported it (the rollback reset it).
  auto status = fetch_json(ctl.port, "/canaries/app.test").as_object();
  EXPECT_TRUE(status.at("guard").is_object()) << json::serialize(status);
}

TEST(Control, ABadDocumentIsRefusedAndTheOthersRun) {
  auto p = start_demo("1.0");
  auto c = start_demo("2.0");
  auto proxy = start_proxy(canary_proxy_config(p, c), 1);
  std::string good = canary_doc(proxy, "", "    stepWeight: 50\n");
  good = replace_all(good, "  revision: \"\"\n", "");
  std::string bad = replace_all(good, "name: app, namespace: test", "name: broken, namespace: test");
  bad = replace_all(bad, "stepWeight: 50", "stepWeight: 500");
  // --validate says the same without running anything: exit 1, the error at FILE:LINE:COL.
  auto dir = make_temp_dir();
  write_file(dir + "/app.yaml", good + "---\n" + bad);
  auto [code, out] = run(control_binary(), {"--validate", "--canaries", dir});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find(dir + "/app.yaml:"), std::string::npos) << out;
  EXPECT_NE(out.find("analysis.stepWeight must be between 0 and 100, got 500"), std::string::npos) << out;
  write_file(dir + "/app.yaml", good);
  std::tie(code, out) = run(control_binary(), {"--validate", "--canaries", dir});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("1 Canary, 0 MetricTemplate, 0 AlertProvider documents OK"), std::string::npos) << out;
  auto ctl = start_controller(good + "---\n" + bad);
  ASSERT_TRUE(ctl.process->wait_for("analysis.stepWeight must be between 0 and 100, got 500")) << ctl.process->output();
  EXPECT_NE(ctl.process->output().find("/canaries/app.yaml:"), std::string::npos);  // FILE:LINE:COL
  auto all = fetch_json(ctl.port, "/canaries").at("canaries").as_array();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].at("name").as_string(), "app");
  EXPECT_EQ(all[0].at("phase").as_string(), "Initialized");  // no revision: it waits for `rollout`
  // The CLI starts a run: a manual rollout of revision 7 begins the analysis.
  child_process cli(control_binary(),
                    {"rollout", "app", "--revision", "7", "--server", "http://127.0.0.1:" + std::to_string(ctl.port)});
  EXPECT_EQ(cli.wait_exit(), 0);
  EXPECT_TRUE(ctl.process->wait_for("New revision detected! Scaling up app.test"));
  EXPECT_EQ(fetch(ctl.port, "POST", "/canaries/ghost/promote").status, 404);
  EXPECT_EQ(fetch(ctl.port, "POST", "/canaries/app/resume").status, 409);
}

namespace {

// Waits for `needle` in the controller's output and returns whether it came.
bool saw(controller_instance& ctl, const std::string& needle, std::chrono::seconds deadline = 120s) {
  return ctl.process->wait_for(needle, deadline).has_value();
}

// Load that sends `header` on every other request.
struct tagged_load {
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, from_canary{0};
  std::thread thread;
  tagged_load(std::uint16_t port, std::string name, std::string value) {
    thread = std::thread([this, port, name, value] {
      http_client c(port);
      for (int i = 0; !stop.load(); ++i) {
        auto r = i % 2 ? c.request("GET", "/", {{name, value}}) : c.get("/");
        ++answered;
        if (r.header("x-version") == "2.0") ++from_canary;
      }
    });
  }
  ~tagged_load() {
    stop = true;
    thread.join();
  }
};

}  // namespace

TEST(Control, ABTestingSendsMatchingRequestsToTheCanaryForItsIterations) {
  auto p = start_demo("1.0");
  auto c = start_demo("2.0");
  auto proxy = start_proxy(canary_proxy_config(p, c), 1);
  tagged_load traffic(proxy.port, "x-canary", "insider");
  auto ctl = start_controller(canary_doc(proxy, "2.0", R"(    threshold: 2
    iterations: 3
    match:
      - headers: {x-canary: {exact: insider}}
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 2s}
)"));
  ASSERT_TRUE(saw(ctl, "Advance app.test canary iteration 1/3")) << ctl.process->output();
  auto policy = route_policy(proxy);
  EXPECT_EQ(json::serialize(policy.at("rules")),
            R"([{"match":[{"headers":{"x-canary":{"exact":"insider"}}}],"cluster":"app-canary"}])");
  EXPECT_EQ(policy.at("split").as_array()[1].at("weight").as_int64(), 0);  // no weighted traffic in A/B
  ASSERT_TRUE(saw(ctl, "Advance app.test canary iteration 3/3")) << ctl.process->output();
  ASSERT_TRUE(saw(ctl, "Promotion completed! Scaling down app.test")) << ctl.process->output();
  EXPECT_EQ(route_policy(proxy).at("rules").as_array().size(), 0u);
  EXPECT_GT(traffic.from_canary.load(), 0);
}

TEST(Control, BlueGreenTestsTheCanaryThroughTheProxyThenSwitches) {
  auto p = start_demo("1.0");
  auto c = start_demo("2.0");
  auto proxy = start_proxy(canary_proxy_config(p, c), 1);
  tagged_load traffic(proxy.port, "x-vane-canary", "always");
  auto loadtester = start_demo("loadtester");  // the load-test webhook's receiver
  auto ctl = start_controller(canary_doc(proxy, "2.0",
                                         R"(    threshold: 2
    iterations: 2
    stepWeightPromotion: 50
    webhooks:
      - {name: load-test, type: rollout, url: http://)" +
                                             loadtester.address() +
                                             R"(/, metadata: {cmd: "hey -H 'x-vane-canary: always' http://app/"}}
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 2s}
)"));
  ASSERT_TRUE(saw(ctl, "Advance app.test canary iteration 1/2")) << ctl.process->output();
  // During the run: only requests carrying x-vane-canary: always reach the canary.
  EXPECT_EQ(fetch(proxy.port, "GET", "/").header("x-version"), "1.0");
  EXPECT_EQ(fetch(proxy.port, "GET", "/", {{"x-vane-canary", "always"}}).header("x-version"), "2.0");
  ASSERT_TRUE(saw(ctl, "Routing all traffic to canary")) << ctl.process->output();
  ASSERT_TRUE(saw(ctl, "Advance app.test primary weight 50")) << ctl.process->output();  // stepWeightPromotion
  ASSERT_TRUE(saw(ctl, "Promotion completed! Scaling down app.test")) << ctl.process->output();
  // The load-test webhook was called every tick of the run, with Flagger's payload.
  EXPECT_GE(loadtester.stats().at("requests").as_int64(), 2);
  auto payload = json::parse(loadtester.stats().at("last_body").as_string()).as_object();
  EXPECT_EQ(payload.at("name").as_string(), "app");
  EXPECT_EQ(payload.at("namespace").as_string(), "test");
  EXPECT_EQ(payload.at("checksum").as_string(), "2.0");
  EXPECT_EQ(payload.at("metadata").at("cmd").as_string(), "hey -H 'x-vane-canary: always' http://app/");
  EXPECT_TRUE(payload.contains("phase"));
}

TEST(Control, MirroringAnalysesTheCopiesBeforeAnyLiveTraffic) {
  auto p = start_demo("1.0");
  auto c = start_demo("2.0");
  auto proxy = start_proxy(canary_proxy_config(p, c), 1);
  load traffic(proxy.port);
  auto ctl = start_controller(canary_doc(proxy, "2.0", R"(    threshold: 2
    iterations: 2
    mirror: true
    mirrorWeight: 100
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 2s}
)"));
  ASSERT_TRUE(saw(ctl, "Advance app.test canary iteration 2/2")) << ctl.process->output();
  EXPECT_GT(c.stats().at("requests").as_int64(), 0);  // copies reached the canary
  EXPECT_EQ(c.stats().at("last_host").as_string().find("-shadow") != std::string::npos, true);
  ASSERT_TRUE(saw(ctl, "Stop traffic mirroring and route all traffic to canary")) << ctl.process->output();
  ASSERT_TRUE(saw(ctl, "Promotion completed! Scaling down app.test")) << ctl.process->output();
  traffic.finish();
  EXPECT_EQ(traffic.not_answered.load(), 0);
  EXPECT_EQ(traffic.errors.load(), 0);
}

TEST(Control, WebhooksGateTheRunAndManualPromotionFinishesIt) {
  auto p = start_demo("1.0");
  auto c = start_demo("2.0");
  auto hooks = start_demo("hooks");                            // answers 200
  auto gate = start_demo("gate", {"--error-percent", "100"});  // answers 500
  auto proxy = start_proxy(canary_proxy_config(p, c), 1);
  load traffic(proxy.port);
  std::string doc = canary_doc(proxy, "2.0",
                               R"(    threshold: 5
    maxWeight: 20
    stepWeight: 20
    webhooks:
      - {name: acceptance, type: pre-rollout, url: http://)" +
                                   hooks.address() + R"(/pre}
      - {name: load, type: rollout, url: http://)" +
                                   hooks.address() + R"(/rollout}
      - {name: events, type: event, url: http://)" +
                                   hooks.address() + R"(/events}
      - {name: approval, type: confirm-promotion, url: http://)" +
                                   gate.address() + R"(/gate}
)");
  doc = replace_all(doc, "  promote: {command: [\"true\"], timeout: 30s}\n", "");  // manual promotion
  auto ctl = start_controller(doc);
  ASSERT_TRUE(saw(ctl, "Pre-rollout check acceptance passed")) << ctl.process->output();
  ASSERT_TRUE(saw(ctl, "Advance app.test canary weight 20")) << ctl.process->output();
  ASSERT_TRUE(saw(ctl, "Halt app.test advancement waiting for approval approval")) << ctl.process->output();
  EXPECT_EQ(fetch_json(ctl.port, "/canaries/app").at("phase").as_string(), "WaitingPromotion");
  // `promote` confirms the gate and, without spec.promote, says the primary runs the new revision.
  child_process cli(control_binary(), {"promote", "app", "--server", "http://127.0.0.1:" + std::to_string(ctl.port)});
  EXPECT_EQ(cli.wait_exit(), 0);
  ASSERT_TRUE(saw(ctl, "Promotion completed! Scaling down app.test")) << ctl.process->output();
  EXPECT_GE(hooks.stats().at("requests").as_int64(), 3);  // pre-rollout, rollout, events
}

TEST(Control, ARestartedControllerResumesTheRun) {
  auto p = start_demo("1.0");
  auto c = start_demo("2.0");
  auto proxy = start_proxy(canary_proxy_config(p, c), 1);
  load traffic(proxy.port);
  auto ctl = start_controller(canary_doc(proxy, "2.0", R"(    threshold: 2
    maxWeight: 60
    stepWeight: 20
    sessionAffinity: {cookieName: vane-canary}
)"));
  ASSERT_TRUE(saw(ctl, "Advance app.test canary weight 20")) << ctl.process->output();
  std::string value(route_policy(proxy).at("session_affinity").at("value").as_string());
  EXPECT_EQ(value.size(), 16u);  // a fresh value for the run
  ctl.process->signal(SIGTERM);
  ASSERT_EQ(ctl.process->wait_exit(), 0);
  ctl.process = std::make_unique<child_process>(
      control_binary(), std::vector<std::string>{"--canaries", ctl.dir + "/canaries", "--listen", "127.0.0.1:0",
                                                 "--state", ctl.dir + "/state.json"});
  ASSERT_TRUE(saw(ctl, "resumed 1 canaries")) << ctl.process->output();
  ASSERT_TRUE(saw(ctl, "Promotion completed! Scaling down app.test")) << ctl.process->output();
  EXPECT_EQ(ctl.process->output().find("New revision detected"), std::string::npos);  // the same run went on
  EXPECT_EQ(ctl.process->output().find("canary weight 20"), std::string::npos);       // from where it was
}

// A MetricTemplate queried from a real Prometheus (Debian package) scraping the proxy.
TEST(Control, PrometheusMetricTemplatesAreQueriedWithFlaggersVariables) {
  auto p = start_demo("1.0");
  auto c = start_demo("2.0", {"--error-percent", "50", "--error-status", "503"});
  // The canary takes 30% before the run, so Prometheus has its errors when the analysis asks.
  std::string config =
      replace_all(replace_all(canary_proxy_config(p, c), "weight: 100}", "weight: 70}"), "weight: 0}", "weight: 30}");
  auto proxy = start_proxy(config, 1);
  prometheus_server prom({"127.0.0.1:" + std::to_string(proxy.admin_port)});
  load traffic(proxy.port);
  const std::string errors_seen =
      R"(sum(rate(vane_upstream_responses_total{route="app",cluster="app-canary",code=~"5.."}[30s])))";
  ASSERT_TRUE(eventually([&] { return prom.query_value(errors_seen).value_or(0) > 0.001; }, 60s));
  std::string doc = canary_doc(proxy, "2.0", R"(    threshold: 2
    maxWeight: 60
    stepWeight: 30
    metrics:
      - name: canary-5xx-per-second
        templateRef: {name: error-rate, namespace: test}
        thresholdRange: {max: 0.001}
        interval: 30s
)");
  doc += R"(---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: error-rate, namespace: test}
spec:
  provider: {type: prometheus, address: http://127.0.0.1:)" +
         std::to_string(prom.port()) + R"(}
  query: |
    sum(rate(vane_upstream_responses_total{route="{{ route }}",cluster="{{ canary }}",code=~"5.."}[{{ interval }}])) or vector(0)
)";
  auto ctl = start_controller(doc);
  // The canary fails half its requests: the template's value is over its max at the first analysis.
  ASSERT_TRUE(saw(ctl, "Halt app.test advancement canary-5xx-per-second")) << ctl.process->output();
  ASSERT_TRUE(saw(ctl, "Canary failed! Scaling down app.test")) << ctl.process->output();
  auto status = fetch_json(ctl.port, "/canaries/app").as_object();
  EXPECT_GT(status.at("metrics").at("canary-5xx-per-second").to_number<double>(), 0.001);
}

TEST(Control, AProxyRestartedMidRunConvergesWithinATick) {
  auto p = start_demo("1.0");
  auto c = start_demo("2.0");
  // Two proxies; the second one's admin port is fixed so that it can come back on it.
  auto a = start_proxy(canary_proxy_config(p, c), 1);
  const std::uint16_t b_admin = unused_port();
  const std::string b_config =
      "admin: {address: 127.0.0.1:" + std::to_string(b_admin) + "}\n" + canary_proxy_config(p, c);
  auto b = std::make_unique<proxy_instance>(start_proxy(b_config, 1));
  load traffic_a(a.port);
  auto load_b = std::make_unique<load>(b->port);
  std::string doc = canary_doc(a, "2.0", R"(    threshold: 2
    maxWeight: 60
    stepWeight: 20
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 2s}
)");
  doc = replace_all(doc, "proxies: [http://127.0.0.1:" + std::to_string(a.admin_port) + "]",
                    "proxies: [http://127.0.0.1:" + std::to_string(a.admin_port) +
                        ", http://127.0.0.1:" + std::to_string(b_admin) + "]");
  auto ctl = start_controller(doc);
  ASSERT_TRUE(saw(ctl, "Advance app.test canary weight 20")) << ctl.process->output();
  // The second proxy goes away and comes back with its file's weights (canary 0).
  load_b.reset();
  b.reset();
  // While a proxy is unreachable its numbers are missing: the analysis halts, it does not count them as zero
  // errors. (vane-control reads the proxies every second; a tick's own reading is the one that decides.)
  ASSERT_TRUE(saw(ctl, "inconclusive: 1 proxies unreachable")) << ctl.process->output();
  b = std::make_unique<proxy_instance>(start_proxy(b_config, 1));
  auto canary_weight = [](const proxy_instance& p) {
    return route_policy(p).at("split").as_array()[1].at("weight").as_int64();
  };
  // Within a tick the controller PUTs the current weight to it again.
  EXPECT_TRUE(eventually([&] { return canary_weight(*b) > 0 && canary_weight(*b) == canary_weight(a); }, 60s));
  ASSERT_TRUE(saw(ctl, "Promotion completed! Scaling down app.test")) << ctl.process->output();
  EXPECT_EQ(canary_weight(*b), 0);
  EXPECT_EQ(canary_weight(a), 0);
}

// A gRPC canary whose calls fail with HTTP 200 and grpc-status INTERNAL: HTTP
// status alone sees nothing wrong (Flagger's builtin query on Istio counts
// these as successes); vane's success rate counts the gRPC status, so the
// run is rolled back.
TEST(Control, AGrpcCanaryFailingWithHttp200IsRolledBack) {
  ASSERT_TRUE(grpcio_available());
  auto p = start_demo("1.0");
  auto c = start_demo("2.0", {"--error-percent", "40", "--grpc-error-status", "internal"});
  auto proxy = start_proxy(weighted_split_config(p.address(), c.address(), 100, 0, "", "h2", "h2"), 1);
  child_process grpc_load("/usr/bin/python3", {source_dir() + "/tests/support/grpc_client.py", "--target",
                                               "127.0.0.1:" + std::to_string(proxy.port), "--method", "echo", "--calls",
                                               "0", "--duration", "120", "--rate", "200", "--concurrency", "4"});
  auto ctl = start_controller(canary_doc(proxy, "2.0", R"(    threshold: 2
    maxWeight: 60
    stepWeight: 20
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 2s}
)"));
  ASSERT_TRUE(ctl.process->wait_for("Canary failed! Scaling down app.test", 120s)) << ctl.process->output();
  const std::string out = ctl.process->output();
  EXPECT_NE(out.find("Halt app.test advancement success rate"), std::string::npos) << out;
  EXPECT_EQ(out.find("Promotion completed"), std::string::npos);
  EXPECT_EQ(json::serialize(route_policy(proxy).at("split")),
            R"([{"cluster":"app-primary","weight":100},{"cluster":"app-canary","weight":0}])");
  // Every answer of the canary was an HTTP 200: only its gRPC status said it failed.
  EXPECT_GT(metric_now(proxy, R"(vane_upstream_responses_total{route="app",cluster="app-canary",code="200"})"), 0);
  EXPECT_EQ(metric_now(proxy, R"(vane_upstream_responses_total{route="app",cluster="app-canary",code="500"})"), 0);
  EXPECT_GT(
      metric_now(proxy, R"(vane_upstream_grpc_responses_total{route="app",cluster="app-canary",grpc_status="13"})"), 0);
}
