// vane-control's units alone: the fleet's /clusters reading, /stats/latency snapshots of odd shapes, the
// builtin metric over histories, the state file, webhook and alert payloads, what status and /metrics show,
// the API's answers, and supervision.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <csignal>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "control/alerts.hpp"
#include "control/api.hpp"
#include "control/builtin.hpp"
#include "control/fleet.hpp"
#include "control/promotion.hpp"
#include "control/state_store.hpp"
#include "control/status.hpp"
#include "control/supervise.hpp"
#include "control/webhooks.hpp"

using namespace vane::control;
namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

canary_spec spec() {
  canary_spec s;
  s.name = "podinfo";
  s.ns = "test";
  s.target = "podinfo";
  s.revision = "2";
  s.route = "app";
  s.primary = "podinfo-primary";
  s.canary = "podinfo-canary";
  s.analysis.interval = 1s;
  s.analysis.threshold = 5;
  s.analysis.step_weight = 20;
  return s;
}

json::object obj(const std::string& text) { return json::parse(text).as_object(); }

}  // namespace

TEST(ControlFleet, ClustersAnswersOfOddShapesAreReasons) {
  EXPECT_EQ(
      cluster_healthy(obj(R"({"clusters":[{"name":"podinfo-primary","healthy_endpoints":2}]})"), "podinfo-primary")
          .value,
      true);
  EXPECT_EQ(
      cluster_healthy(obj(R"({"clusters":[{"name":"podinfo-primary","healthy_endpoints":0}]})"), "podinfo-primary")
          .value,
      false);
  EXPECT_EQ(cluster_healthy(obj(R"({"clusters":[]})"), "podinfo-primary").value, false);  // not there: not healthy
  for (const char* odd : {R"({})", R"({"clusters":"x"})", R"({"clusters":[1]})", R"({"clusters":[{"name":null}]})",
                          R"({"clusters":[{"name":"podinfo-primary","healthy_endpoints":"1"}]})",
                          R"({"clusters":[{"name":"podinfo-primary"}]})",
                          R"({"clusters":[{"name":"podinfo-primary","healthy_endpoints":-1}]})"}) {
    auto r = cluster_healthy(obj(odd), "podinfo-primary");
    EXPECT_FALSE(r) << odd;
    EXPECT_FALSE(r.why.empty()) << odd;
  }
}

TEST(ControlBuiltin, StatsAnswersOfOddShapesAreReasonsNotSnapshots) {
  auto at = std::chrono::steady_clock::now();
  auto good = read_snapshot(obj(R"({"process_start_time":1.5,"routes":[
      {"route":"other","cluster":7},
      {"route":"app","cluster":"podinfo-canary","upstream":{"codes":{"200":9,"503":1},"buckets":[[1000,1016,10]]},"mirror":null}]})"),
                            "app", at);
  ASSERT_TRUE(good) << good.why;
  EXPECT_EQ(good.value->by_key.at(series_key("podinfo-canary", "upstream")).total, 10u);
  EXPECT_EQ(good.value->by_key.at(series_key("podinfo-canary", "upstream")).errors, 1u);
  for (const char* odd :
       {R"({"process_start_time":"1","routes":[]})", R"({"routes":{}})", R"({"routes":null})", R"({})",
        R"({"routes":[7]})", R"({"routes":[{"route":1}]})", R"({"routes":[{"route":"app","cluster":5}]})",
        R"({"routes":[{"route":"app","cluster":"c","upstream":"x"}]})",
        R"({"routes":[{"route":"app","cluster":"c","upstream":{"codes":{"200":"1"}}}]})",
        R"({"routes":[{"route":"app","cluster":"c","upstream":{"codes":{"200":-1}}}]})",
        R"({"routes":[{"route":"app","cluster":"c","upstream":{"codes":{"200":1.5}}}]})",
        R"({"routes":[{"route":"app","cluster":"c","upstream":{"codes":{"200":1e300}}}]})",
        R"({"routes":[{"route":"app","cluster":"c","upstream":{"codes":{"200":18446744073709551615,"500":1}}}]})",
        R"({"routes":[{"route":"app","cluster":"c","upstream":{"codes":[]}}]})",
        R"({"routes":[{"route":"app","cluster":"c","upstream":{"buckets":"x"}}]})",
        R"({"routes":[{"route":"app","cluster":"c","upstream":{"buckets":[[1,2]]}}]})",
        R"({"routes":[{"route":"app","cluster":"c","upstream":{"buckets":[[null,null,null]]}}]})"}) {
    auto r = read_snapshot(obj(odd), "app", at);
    EXPECT_FALSE(r) << odd;
    EXPECT_FALSE(r.why.empty()) << odd;
    EXPECT_TRUE(snapshot_from_stats(obj(odd), "app", at).by_key.empty()) << odd;
  }
}

TEST(ControlBuiltin, TheBuiltinReadingOverTheFleet) {
  auto t0 = std::chrono::steady_clock::now();
  auto snap = [&](std::uint64_t ok, std::uint64_t errors, std::chrono::steady_clock::time_point at) {
    std::string codes = R"({"200":)" + std::to_string(ok) + R"(,"503":)" + std::to_string(errors) + "}";
    return *read_snapshot(
                obj(R"({"process_start_time":1,"routes":[{"route":"app","cluster":"podinfo-canary","upstream":{"codes":)" +
                    codes + "}}]}"),
                "app", at)
                .value;
  };
  metric_spec m;
  m.name = "request-success-rate";
  m.interval = 10s;
  std::map<std::string, proxy_history> fleet;
  EXPECT_EQ(builtin_reading(m, fleet, 0, "podinfo-canary", "podinfo-primary", false).why, "no proxies to read");
  fleet["a"].add(snap(100, 0, t0), 1min);
  auto first = builtin_reading(m, fleet, 0, "podinfo-canary", "podinfo-primary", false);
  EXPECT_TRUE(first.inconclusive);
  EXPECT_EQ(first.why, "first window");
  fleet["a"].add(snap(190, 10, t0 + 10s), 1min);
  auto r = builtin_reading(m, fleet, 0, "podinfo-canary", "podinfo-primary", false);
  EXPECT_EQ(r.value, 90);
  EXPECT_EQ(builtin_reading(m, fleet, 1, "podinfo-canary", "podinfo-primary", false).why, "1 proxies unreachable");
  m.min_requests = 500;
  EXPECT_EQ(builtin_reading(m, fleet, 0, "podinfo-canary", "podinfo-primary", false).why,
            "100 requests < minRequests 500");
}

TEST(ControlStateStore, ReadsBackWhatItWritesAndRefusesOddEntriesAlone) {
  run_state st;
  st.phase = canary_phase::waiting_promotion;
  st.revision = "2";
  st.weight = 40;
  st.failed_checks = 1;
  st.promoting_since = 1700000000;
  st.initialized = true;
  st.gate_alerted = "confirm-promotion";
  auto text = render_state_text({{"podinfo.test", st}});
  auto back = read_state_text(text);
  EXPECT_TRUE(back.problems.empty());
  ASSERT_EQ(back.canaries.count("podinfo.test"), 1u);
  EXPECT_EQ(state_to_json(back.canaries.at("podinfo.test")), state_to_json(st));
  // Older files: no "initialized", every canary in them was seen.
  auto old = read_state_text(R"({"canaries":{"a.test":{"phase":"Succeeded","revision":"3"}}})");
  ASSERT_EQ(old.canaries.count("a.test"), 1u);
  EXPECT_TRUE(old.canaries.at("a.test").initialized);
  EXPECT_EQ(old.canaries.at("a.test").phase, canary_phase::succeeded);
  auto odd = read_state_text(R"({"canaries":{
      "good.test":{"phase":"Failed"},
      "a.test":{"phase":"Bogus"}, "b.test":{"phase":7}, "c.test":{"weight":"40"}, "d.test":{"weight":-1},
      "e.test":{"weight":400}, "f.test":null, "g.test":{"initialized":"yes"}, "h.test":{"promoting_since":1.5}}})");
  EXPECT_EQ(odd.canaries.size(), 1u);
  EXPECT_EQ(odd.problems.size(), 8u);
  for (const char* whole : {"", "<html>", "[]", R"({"canaries":[]})", R"({"canaries":{"x":{})"}) {
    auto r = read_state_text(whole);
    EXPECT_TRUE(r.canaries.empty()) << whole;
    EXPECT_FALSE(r.problems.empty()) << whole;
  }
}

TEST(ControlPayloads, WebhooksAndAlertsSpeakEachServicesJson) {
  auto s = spec();
  run_state st;
  st.phase = canary_phase::progressing;
  st.revision = "2";
  EXPECT_EQ(json::serialize(hook_payload(s, st, json::object{{"cmd", "hey"}})),
            R"({"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"2","metadata":{"cmd":"hey"}})");
  alert_provider slack{"on-call", "test", "slack", "http://x/", "ops", ""};
  EXPECT_EQ(json::serialize(alert_payload(slack, s, st, "Canary analysis failed: x", "error")),
            R"({"text":"podinfo.test: Canary analysis failed: x","username":"vane","channel":"ops"})");
  alert_provider teams{"team", "test", "msteams", "http://x/", "", ""};
  EXPECT_EQ(alert_payload(teams, s, st, "m", "error").at("themeColor").as_string(), "FF0000");
  alert_provider generic{"log", "test", "generic", "http://x/", "", ""};
  EXPECT_EQ(alert_payload(generic, s, st, "m", "warn").at("phase").as_string(), "Progressing");
  alert_provider gchat{"chat", "test", "gchat", "http://x/", "ops", "bot"};  // (Chat refuses unknown fields)
  EXPECT_EQ(json::serialize(alert_payload(gchat, s, st, "m", "warn")), R"({"text":"podinfo.test: m"})");
  EXPECT_TRUE(severity_reaches("error", "warn"));
  EXPECT_TRUE(severity_reaches("warn", "warn"));
  EXPECT_FALSE(severity_reaches("info", "warn"));
}

// Flagger's event webhook metadata: its three keys first, the hook's own after (never over them).
TEST(ControlPayloads, EventWebhooksSayWarningForHaltsRollbacksAndFailures) {
  webhook_spec hook;
  hook.metadata = {{"team", "payments"}, {"eventType", "mine"}};
  json::object md = event_metadata(hook, "Rolling back podinfo.test failed checks threshold reached 5", 1700000000123);
  EXPECT_EQ(md.at("eventType").as_string(), "Warning");
  EXPECT_EQ(md.at("timestamp").as_string(), "1700000000123");
  EXPECT_EQ(md.at("team").as_string(), "payments");
  EXPECT_EQ(md.at("eventMessage").as_string(), "Rolling back podinfo.test failed checks threshold reached 5");
  EXPECT_EQ(event_metadata(hook, "Advance podinfo.test canary weight 20", 0).at("eventType").as_string(), "Normal");
  EXPECT_EQ(event_metadata(hook, "Halt podinfo.test advancement success rate 97.50% < 99%", 0).at("eventType"),
            "Warning");
  EXPECT_EQ(event_metadata(hook, "Canary failed! Scaling down podinfo.test", 0).at("eventType"), "Warning");
}

TEST(ControlStatus, TheWatchdogAndTheMetricsShowARunThatDoesNotTick) {
  canary_record c;
  c.spec = spec();
  c.state.phase = canary_phase::progressing;
  EXPECT_FALSE(stalled(c, 1000));  // no tick yet
  c.last_tick = 1000;
  EXPECT_FALSE(stalled(c, 1002.9));
  EXPECT_TRUE(stalled(c, 1003.1));  // more than 3 intervals of 1 s
  c.state.phase = canary_phase::succeeded;
  EXPECT_FALSE(stalled(c, 5000));  // no run: nothing to tick for
  c.state.phase = canary_phase::progressing;
  c.reason = "errors: prometheus answered 503";
  auto s = status_json(c, 1010);
  EXPECT_EQ(s.at("reason").as_string(), "errors: prometheus answered 503");
  EXPECT_EQ(s.at("last_tick_seconds_ago").to_number<double>(), 10);
  EXPECT_TRUE(s.at("stalled").as_bool());
  std::map<std::string, std::unique_ptr<canary_record>> all;
  all["podinfo.test"] = std::make_unique<canary_record>(std::move(c));
  vane::log_linear_histogram ticks;
  std::string text = metrics_text(all, ticks);
  EXPECT_NE(text.find("# TYPE vane_canary_last_tick_timestamp_seconds gauge"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(vane_canary_last_tick_timestamp_seconds{name="podinfo",namespace="test"} 1000)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(vane_canary_loop_restarts_total{name="podinfo",namespace="test"} 0)"), std::string::npos);
}

TEST(ControlApi, CommandsAndAnswersWithoutASocket) {
  canary_record c;
  c.spec = spec();
  c.state.initialized = true;
  c.state.revision = "1";
  api_handlers h;
  h.ready = [] { return true; };
  h.metrics = [] { return std::string("# metrics\n"); };
  h.canaries = [&] { return std::vector<canary_record*>{&c}; };
  h.status = [](const canary_record& r) { return status_json(r, 0); };
  h.command = [](canary_record& r, std::string_view action, const json::object& body) {
    return apply_command(r.spec, r.state, action, body);
  };
  EXPECT_EQ(answer_api(h, "GET", "/ready", "").body, "{\"ready\":true}\n");
  EXPECT_EQ(answer_api(h, "GET", "/metrics", "").content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(answer_api(h, "GET", "/canaries/podinfo", "").status, 200u);
  EXPECT_EQ(answer_api(h, "GET", "/canaries/podinfo.test", "").status, 200u);
  EXPECT_EQ(answer_api(h, "GET", "/canaries/ghost", "").status, 404u);
  EXPECT_EQ(answer_api(h, "POST", "/canaries/podinfo/promote", "").status, 409u);  // Initialized: nothing to promote
  EXPECT_EQ(answer_api(h, "POST", "/canaries/podinfo/rollout", "<html>").status, 400u);
  EXPECT_EQ(answer_api(h, "POST", "/canaries/podinfo/rollout", R"({"revision": 7})").status, 409u);
  EXPECT_EQ(answer_api(h, "POST", "/canaries/podinfo/dance", "").status, 404u);
  EXPECT_EQ(answer_api(h, "DELETE", "/canaries/podinfo", "").status, 405u);
  auto a = answer_api(h, "POST", "/canaries/podinfo/rollout", R"({"revision": "3"})");
  EXPECT_EQ(a.status, 200u) << a.body;
  EXPECT_EQ(c.state.pending_revision, "3");
  c.state.phase = canary_phase::waiting_promotion;
  c.state.promotion_in_flight = true;  // spec.promote running: the primary is being changed
  EXPECT_NE(apply_command(c.spec, c.state, "abort", {}), std::nullopt);
  EXPECT_EQ(c.state.phase, canary_phase::waiting_promotion);
  c.state.promotion_in_flight = false;
  c.state.phase = canary_phase::promoting;
  c.state.primary_promoted = true;  // the primary runs the new revision: nothing to roll back to
  EXPECT_NE(apply_command(c.spec, c.state, "abort", {}), std::nullopt);
  c.state.primary_promoted = false;
  c.state.phase = canary_phase::progressing;
  EXPECT_EQ(apply_command(c.spec, c.state, "abort", {}), std::nullopt);
  EXPECT_EQ(c.state.failed_checks, 5u);  // at the threshold: rolls back at the next tick
  c.state.phase = canary_phase::failed;
  c.state.revision = "3";
  EXPECT_EQ(apply_command(c.spec, c.state, "resume", {}), std::nullopt);
  EXPECT_EQ(c.state.pending_revision, "3");
}

TEST(ControlSupervise, ALoopEndedByAnExceptionStartsAgainAndANormalEndIsFinal) {
  asio::io_context ctx;
  int starts = 0, failures = 0;
  std::string what;
  supervised s;
  s.who = "test loop";
  s.pause = 1ms;
  s.start = [&]() -> asio::awaitable<void> {
    ++starts;
    asio::steady_timer t(ctx, 1ms);
    co_await t.async_wait(asio::use_awaitable);
    if (starts < 3) throw std::runtime_error("unexpected answer shape");
  };
  s.failed = [&](const std::string& w) {
    ++failures;
    what = w;
  };
  supervise(ctx.get_executor(), s);
  ctx.run();
  EXPECT_EQ(starts, 3);
  EXPECT_EQ(failures, 2);
  EXPECT_EQ(what, "unexpected answer shape");
  // A loop no longer wanted (its canary is gone) is not started again.
  asio::io_context ctx2;
  int starts2 = 0;
  supervised gone;
  gone.who = "gone";
  gone.pause = 1ms;
  gone.start = [&]() -> asio::awaitable<void> {
    ++starts2;
    throw std::runtime_error("boom");
    co_return;
  };
  gone.wanted = [] { return false; };
  supervise(ctx2.get_executor(), gone);
  ctx2.run();
  EXPECT_EQ(starts2, 1);
}

namespace {

// promote_primary run to its end on an io_context of its own.
promotion_result promote_now(const canary_spec& c, const std::string& revision) {
  asio::io_context ctx;
  promotion_result result;
  asio::co_spawn(
      ctx, [&]() -> asio::awaitable<void> { result = co_await promote_primary(ctx.get_executor(), c, revision); },
      asio::detached);
  ctx.run();
  return result;
}

}  // namespace

// A promote command that outlives its timeout is killed with all it started (not only the shell), and
// what it printed shows in the failure (not in the controller's own output).
TEST(ControlPromotion, ACommandPastItsTimeoutIsKilledWithItsChildren) {
  const std::string pid_file = ::testing::TempDir() + "/vane-promote-child-" + std::to_string(::getpid()) + ".pid";
  std::remove(pid_file.c_str());
  canary_spec c;
  c.name = "podinfo";
  c.ns = "test";
  promote_spec p;
  p.command = {"sh", "-c", "echo promoting $VANE_REVISION; sleep 30 & echo $! > " + pid_file + "; wait"};
  p.timeout = 2s;  // (time for a loaded box to start the shell and its sleep)
  c.promote = p;
  promotion_result result = promote_now(c, "7");
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.failure.find("timed out after 2s"), std::string::npos) << result.failure;
  EXPECT_NE(result.failure.find("promoting 7"), std::string::npos) << result.failure;
  pid_t child = 0;
  std::ifstream(pid_file) >> child;
  ASSERT_GT(child, 0);
  // The background sleep was killed too: gone, or a zombie waiting for its new parent to reap it.
  auto state = [&] {
    std::string s = "gone";
    if (std::ifstream stat("/proc/" + std::to_string(child) + "/stat"); stat) {
      std::string pid, name;
      stat >> pid >> name >> s;
    }
    return s;
  };
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (state() != "gone" && state() != "Z" && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);  // (its death is the kernel's to finish: polled with a deadline)
  EXPECT_TRUE(state() == "gone" || state() == "Z") << state();
  // A bad URL says why.
  promote_spec bad;
  bad.url = "https://promoter.example/";
  c.promote = bad;
  result = promote_now(c, "7");
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.failure.find("is not an http:// URL"), std::string::npos) << result.failure;
}

// Calls to proxies that end at once, inside co_spawn (a URL that cannot be used), still end the wait for
// them all: the tick waited for ever on a timer nobody cancelled.
TEST(ControlFleet, CallsThatEndAtOnceDoNotHoldTheTick) {
  asio::io_context ctx;
  fleet_client fleet(ctx.get_executor(), "");
  std::vector<std::string> failures;
  bool done = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        std::vector<std::string> urls{"http://:9901", "not a url"};  // (named: GCC 12 and co_await arguments)
        std::string route = "app";
        failures = co_await fleet.push(urls, route, json::object{});
        done = true;
      },
      asio::detached);
  ctx.run_for(10s);
  ASSERT_TRUE(done);
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_EQ(failures[0], "not an http:// URL");
  EXPECT_EQ(failures[1], "not an http:// URL");
}
