// The analysis state machine (control/run.*) with a scripted world and a
// fake clock: every phase transition, each webhook type, gates, threshold,
// inconclusive windows, new revision mid-run, stepWeights with intervals,
// stepWeightPromotion, the mirror pre-step, blue/green with mirror, abort.
#include "control/run.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <deque>
#include <functional>
#include <map>

using namespace vane::control;
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

struct fake_env : run_env {
  std::map<std::string, std::vector<hook_result>> hooks;  // by type
  std::vector<std::string> hooks_called;
  std::map<std::string, std::deque<metric_reading>> readings;  // by metric name; the last one repeats
  std::vector<bool> mirror_reads;
  bool healthy = true, promote_ok = true;
  int promotions = 0;
  std::int64_t clock = 1000;
  std::vector<std::string> events, alerts;
  json::object last_push;
  int pushes = 0;
  std::optional<bool> result;

  // Runs while a hook of the type is being called: what the abort loop or an API call may do then.
  std::map<std::string, std::function<asio::awaitable<void>()>> meanwhile;
  asio::awaitable<std::vector<hook_result>> call_hooks(std::string type) override {
    hooks_called.push_back(type);
    if (auto it = meanwhile.find(type); it != meanwhile.end()) {
      auto once = std::move(it->second);  // (kept in this frame while it runs)
      meanwhile.erase(it);
      co_await once();
    }
    co_return hooks[type];
  }
  asio::awaitable<void> refresh() override {
    ++refreshes;
    co_return;
  }
  std::optional<std::string> guard_trip;  // what the proxies' guard says at the next refresh
  int refreshes = 0;
  std::optional<std::string> guard_tripped() override { return guard_trip; }
  asio::awaitable<metric_reading> read_metric(const metric_spec& m, bool mirror) override {
    mirror_reads.push_back(mirror);
    auto& q = readings[m.name];
    metric_reading r = q.empty() ? metric_reading{} : q.front();
    if (q.size() > 1) q.pop_front();
    co_return r;
  }
  bool push_ok = true;  // what the proxies say to a push
  asio::awaitable<bool> push(json::object traffic) override {
    last_push = std::move(traffic);
    ++pushes;
    co_return push_ok;
  }
  asio::awaitable<bool> primary_healthy() override { co_return healthy; }
  asio::awaitable<bool> promote() override {
    ++promotions;
    co_return promote_ok;
  }
  asio::awaitable<void> alert(std::string message, std::string severity) override {
    alerts.push_back(severity + ": " + message);
    co_return;
  }
  void event(const std::string& message) override { events.push_back(message); }
  void changed() override {}
  void finished(bool succeeded) override { result = succeeded; }
  std::int64_t now() override { return clock; }
  std::string new_affinity_value() override { return "run" + std::to_string(events.size()); }

  bool saw(const std::string& e) const { return std::find(events.begin(), events.end(), e) != events.end(); }
  std::int64_t canary_weight() const {
    return last_push.at("split").as_array()[1].at("weight").to_number<std::int64_t>();
  }
};

canary_spec base_spec() {
  canary_spec s;
  s.name = "podinfo";
  s.ns = "test";
  s.target = "podinfo";
  s.route = "podinfo";
  s.primary = "podinfo-primary";
  s.canary = "podinfo-canary";
  s.revision = "2";
  s.promote = promote_spec{"", {"true"}, std::chrono::seconds(60)};
  s.analysis.threshold = 2;
  s.analysis.step_weight = 25;
  s.analysis.max_weight = 50;
  metric_spec m;
  m.name = "request-success-rate";
  m.min = 99;
  s.analysis.metrics.push_back(m);
  return s;
}

// A canary past Flagger's first sight on revision 1: the spec's revision 2 is a change, and starts a run.
run_state baseline() {
  run_state st;
  st.initialized = true;
  st.revision = "1";
  return st;
}

metric_reading value(double v) { return metric_reading{v, false, ""}; }

// One tick, run to its end (the fake world answers at once).
void tick(const canary_spec& s, run_state& st, fake_env& env) {
  asio::io_context ctx;
  canary_run run(s, st, env);
  asio::co_spawn(ctx, run.tick(), asio::detached);
  ctx.run();
}

// Ticks until the phase is reached (or 50 ticks).
int ticks_until(const canary_spec& s, run_state& st, fake_env& env, canary_phase phase) {
  for (int i = 1; i <= 50; ++i) {
    tick(s, st, env);
    if (st.phase == phase) return i;
  }
  return -1;
}

}  // namespace

TEST(CanaryRun, AHealthyRunWalksEveryPhaseToSucceeded) {
  auto s = base_spec();
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(100)};
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::progressing);  // no confirm-rollout hooks: straight through Waiting
  EXPECT_TRUE(env.saw("New revision detected! Scaling up podinfo.test"));
  EXPECT_TRUE(env.saw("Starting canary analysis for podinfo.test"));
  EXPECT_EQ(env.canary_weight(), 0);
  tick(s, st, env);
  EXPECT_EQ(st.weight, 25u);
  EXPECT_EQ(env.canary_weight(), 25);
  tick(s, st, env);
  EXPECT_EQ(st.weight, 50u);
  EXPECT_TRUE(env.saw("Advance podinfo.test canary weight 50"));
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::waiting_promotion);
  tick(s, st, env);
  EXPECT_EQ(env.promotions, 1);
  EXPECT_EQ(st.phase, canary_phase::promoting);
  EXPECT_TRUE(env.saw("Copying podinfo.test template spec to podinfo-primary.test"));
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::finalising);
  EXPECT_TRUE(env.saw("Routing all traffic to primary"));
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::succeeded);
  EXPECT_TRUE(env.saw("Promotion completed! Scaling down podinfo.test"));
  EXPECT_EQ(env.canary_weight(), 0);
  EXPECT_EQ(env.result, true);
  EXPECT_EQ(env.alerts.back(), "info: Canary analysis completed successfully, promotion finished.");
  // Level-triggered: a tick after the end still puts the final state.
  int before = env.pushes;
  tick(s, st, env);
  EXPECT_EQ(env.pushes, before + 1);
  EXPECT_EQ(st.phase, canary_phase::succeeded);
}

TEST(CanaryRun, FailedChecksReachingTheThresholdRollBack) {
  auto s = base_spec();
  s.analysis.webhooks.push_back({"cleanup", "post-rollout", "http://x/", std::chrono::seconds(10), {}});
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(100), value(97.5)};
  env.hooks["post-rollout"] = {{"cleanup", true, ""}};
  // 1 start, 2 weight 25, 3 a passing check and weight 50, 4 a failed check, 5 the failed check that
  // reaches the threshold, and the rollback in the same tick (Flagger waits for the next one).
  ASSERT_EQ(ticks_until(s, st, env, canary_phase::failed), 5);
  EXPECT_TRUE(env.saw("Halt podinfo.test advancement success rate 97.50% < 99%"));
  EXPECT_TRUE(env.saw("Rolling back podinfo.test failed checks threshold reached 2"));
  EXPECT_TRUE(env.saw("Canary failed! Scaling down podinfo.test"));
  EXPECT_TRUE(env.saw("Post-rollout check cleanup passed"));
  EXPECT_EQ(env.canary_weight(), 0);
  EXPECT_EQ(env.result, false);
  EXPECT_EQ(env.alerts.back(), "error: Canary analysis failed: failed checks threshold reached 2");
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::failed);  // stays failed for the same revision
}

TEST(CanaryRun, InconclusiveWindowsHaltWithoutAFailedCheck) {
  auto s = base_spec();
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {metric_reading{std::nullopt, true, "first window"}};
  for (int i = 0; i < 10; ++i) tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::progressing);
  EXPECT_EQ(st.weight, 25u);
  EXPECT_EQ(st.failed_checks, 0u);
  EXPECT_TRUE(env.saw("Halt podinfo.test advancement request-success-rate inconclusive: first window"));
  // No data at all (and no minRequests): Flagger's failed check.
  env.readings["request-success-rate"] = {metric_reading{}};
  tick(s, st, env);
  EXPECT_EQ(st.failed_checks, 1u);
}

TEST(CanaryRun, GatesHoldAndPromoteConfirms) {
  auto s = base_spec();
  s.promote.reset();  // manual promotion
  for (const char* type : {"confirm-rollout", "confirm-traffic-increase", "confirm-promotion"})
    s.analysis.webhooks.push_back({std::string("gate-") + type, type, "http://x/", std::chrono::seconds(10), {}});
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(100)};
  env.hooks["confirm-rollout"] = {{"gate-confirm-rollout", false, "status 403"}};
  tick(s, st, env);
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::waiting);
  EXPECT_TRUE(env.saw("Halt podinfo.test advancement waiting for approval gate-confirm-rollout"));
  EXPECT_EQ(std::count(env.alerts.begin(), env.alerts.end(),
                       "warn: Halt podinfo.test advancement waiting for approval gate-confirm-rollout"),
            1);  // alerted once per hold
  env.hooks["confirm-rollout"] = {{"gate-confirm-rollout", true, ""}};
  env.hooks["confirm-traffic-increase"] = {{"gate-confirm-traffic-increase", false, "status 500"}};
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::progressing);
  tick(s, st, env);
  EXPECT_EQ(st.weight, 0u);  // held
  env.hooks["confirm-traffic-increase"] = {{"gate-confirm-traffic-increase", true, ""}};
  env.hooks["confirm-promotion"] = {{"gate-confirm-promotion", false, "status 500"}};
  ASSERT_GT(ticks_until(s, st, env, canary_phase::waiting_promotion), 0);
  tick(s, st, env);
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::waiting_promotion);  // the gate holds
  st.promote_confirmed = true;                           // POST /canaries/NAME/promote
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::promoting);
  EXPECT_EQ(env.promotions, 0);  // manual: the promote call said the primary runs it
}

TEST(CanaryRun, ManualPromotionWaitsForPromote) {
  auto s = base_spec();
  s.promote.reset();
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(100)};
  ASSERT_GT(ticks_until(s, st, env, canary_phase::waiting_promotion), 0);
  for (int i = 0; i < 3; ++i) tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::waiting_promotion);
  EXPECT_EQ(std::count(env.events.begin(), env.events.end(),
                       "Waiting for vane-control promote podinfo (no promote command or url)"),
            1);
  st.promote_confirmed = true;
  EXPECT_GT(ticks_until(s, st, env, canary_phase::succeeded), 0);
}

TEST(CanaryRun, WebhooksOfEveryType) {
  auto s = base_spec();
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(100)};
  // pre-rollout failing counts a failed check and is retried; passing once is enough.
  env.hooks["pre-rollout"] = {{"acceptance", false, "status 500"}};
  tick(s, st, env);
  tick(s, st, env);
  EXPECT_EQ(st.failed_checks, 1u);
  EXPECT_TRUE(env.saw("Pre-rollout check acceptance failed: status 500"));
  env.hooks["pre-rollout"] = {{"acceptance", true, ""}};
  tick(s, st, env);
  EXPECT_TRUE(env.saw("Pre-rollout check acceptance passed"));
  EXPECT_EQ(st.weight, 25u);
  // rollout failing counts and halts.
  env.hooks["rollout"] = {{"load", false, "timeout"}};
  tick(s, st, env);
  EXPECT_EQ(st.failed_checks, 2u);
  EXPECT_TRUE(env.saw("Halt podinfo.test advancement external check load failed: timeout"));
  EXPECT_EQ(st.weight, 25u);
  // rollback answering 2xx rolls back at once (even below the threshold).
  st.failed_checks = 0;
  env.hooks["rollout"] = {};
  env.hooks["rollback"] = {{"big-red-button", true, ""}};
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::failed);
  EXPECT_TRUE(env.saw("Rolling back podinfo.test rollback webhook big-red-button triggered"));
  EXPECT_NE(std::find(env.hooks_called.begin(), env.hooks_called.end(), "post-rollout"), env.hooks_called.end());
}

// As Flagger's: a rollback webhook is asked while the run waits to start and waits for promotion too,
// not only while it is analysed.
TEST(CanaryRun, ARollbackWebhookRollsBackAWaitingRunToo) {
  for (const canary_phase at : {canary_phase::waiting, canary_phase::waiting_promotion}) {
    SCOPED_TRACE(phase_name(at));
    auto s = base_spec();
    run_state st = baseline();
    fake_env env;
    env.readings["request-success-rate"] = {value(100)};
    env.hooks["confirm-rollout"] = {{"gate", at != canary_phase::waiting, "closed"}};
    env.hooks["confirm-promotion"] = {{"gate", false, "closed"}};
    ASSERT_GT(ticks_until(s, st, env, at), 0);
    tick(s, st, env);  // held at the gate
    ASSERT_EQ(st.phase, at);
    env.hooks["rollback"] = {{"big-red-button", true, ""}};
    tick(s, st, env);
    EXPECT_EQ(st.phase, canary_phase::failed);
    EXPECT_EQ(env.canary_weight(), 0);
    EXPECT_TRUE(env.saw("Rolling back podinfo.test rollback webhook big-red-button triggered"));
    EXPECT_EQ(env.promotions, 0);
  }
}

// As Flagger stops when it cannot set the routes: a weight that did not reach every proxy is not stepped
// past (a canary without metrics walked to promotion with every PUT failing).
TEST(CanaryRun, NoStepWhileTheLastTrafficChangeDidNotReachEveryProxy) {
  auto s = base_spec();
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(100)};
  ASSERT_GT(ticks_until(s, st, env, canary_phase::progressing), 0);
  tick(s, st, env);
  ASSERT_EQ(st.weight, 25u);
  env.push_ok = false;
  tick(s, st, env);  // steps to 50, whose push fails
  ASSERT_EQ(st.weight, 50u);
  tick(s, st, env);
  tick(s, st, env);
  EXPECT_EQ(st.weight, 50u);
  EXPECT_EQ(st.phase, canary_phase::progressing);  // (at maxWeight: it would wait for promotion now)
  EXPECT_TRUE(env.saw("Halt podinfo.test advancement: the last traffic change did not reach every proxy"));
  env.push_ok = true;
  tick(s, st, env);  // the push of 50 reaches every proxy this time
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::waiting_promotion);
}

// A revision given to `rollout` stays while the spec's revision does not change: the next tick used to
// restart the run on the file's older revision.
TEST(CanaryRun, ARevisionGivenToRolloutIsNotUndoneByTheSpecs) {
  auto s = base_spec();
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(100)};
  tick(s, st, env);  // the spec's revision 2: a run
  ASSERT_EQ(st.revision, "2");
  st.pending_revision = "from-rollout";  // as apply_command("rollout", {"revision": "from-rollout"}) sets it
  tick(s, st, env);
  EXPECT_EQ(st.revision, "from-rollout");
  env.events.clear();
  for (int i = 0; i < 3; ++i) tick(s, st, env);
  EXPECT_EQ(st.revision, "from-rollout");
  EXPECT_FALSE(env.saw("New revision detected! Restarting analysis for podinfo.test"));
  // A change of the spec's own revision still starts a run.
  s.revision = "next";
  tick(s, st, env);
  EXPECT_EQ(st.revision, "next");
}

TEST(CanaryRun, ANewRevisionMidRunRestarts) {
  auto s = base_spec();
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(100)};
  tick(s, st, env);
  tick(s, st, env);
  ASSERT_EQ(st.weight, 25u);
  std::string first_value = st.affinity_value;
  s.revision = "3";
  tick(s, st, env);
  EXPECT_TRUE(env.saw("New revision detected! Restarting analysis for podinfo.test"));
  EXPECT_EQ(st.revision, "3");
  EXPECT_EQ(st.weight, 0u);
  EXPECT_EQ(env.canary_weight(), 0);  // everything to the primary
  EXPECT_NE(st.affinity_value, first_value);
}

TEST(CanaryRun, StepWeightsWithTheirOwnIntervalsAndStepWeightPromotion) {
  auto s = base_spec();
  s.analysis.step_weight = 0;
  s.analysis.step_weights = {{5, std::nullopt}, {20, std::chrono::seconds(30)}, {60, std::nullopt}};
  s.analysis.interval = std::chrono::seconds(10);
  s.analysis.step_weight_promotion = 25;
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(100)};
  tick(s, st, env);
  std::vector<std::uint32_t> weights;
  std::vector<vane::duration> intervals;
  for (int i = 0; i < 3; ++i) {
    tick(s, st, env);
    weights.push_back(st.weight);
    intervals.push_back(next_interval(s, st));
  }
  EXPECT_EQ(weights, (std::vector<std::uint32_t>{5, 20, 60}));
  EXPECT_EQ(intervals[0], std::chrono::seconds(10));
  EXPECT_EQ(intervals[1], std::chrono::seconds(30));  // the 20% step's own interval
  ASSERT_GT(ticks_until(s, st, env, canary_phase::promoting), 0);
  tick(s, st, env);
  EXPECT_TRUE(env.saw("Advance podinfo.test primary weight 65"));
  tick(s, st, env);
  EXPECT_TRUE(env.saw("Advance podinfo.test primary weight 90"));
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::finalising);
  EXPECT_EQ(st.weight, 0u);
}

TEST(CanaryRun, PromotionWaitsForAHealthyPrimaryThenGivesUp) {
  auto s = base_spec();
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(100)};
  env.healthy = false;
  ASSERT_GT(ticks_until(s, st, env, canary_phase::promoting), 0);
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::promoting);  // waits
  env.clock += 61;                               // promote.timeout is 60s
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::failed);
  EXPECT_TRUE(env.saw("Rolling back podinfo.test primary not healthy on every proxy after promotion"));

  // Resumed in Promoting from a status that does not keep when it began (a failover): the wait
  // counts from the resumed tick, not from 1970.
  run_state resumed = baseline();
  resumed.revision = "2";
  resumed.phase = canary_phase::promoting;
  resumed.primary_promoted = true;
  tick(s, resumed, env);
  EXPECT_EQ(resumed.phase, canary_phase::promoting);
  EXPECT_EQ(resumed.promoting_since, env.clock);
  env.clock += 61;
  tick(s, resumed, env);
  EXPECT_EQ(resumed.phase, canary_phase::failed);
}

TEST(CanaryRun, MirrorPreStepThenWeights) {
  auto s = base_spec();
  s.analysis.mirror = true;
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(100)};
  tick(s, st, env);  // Progressing, weight 0: the mirrored tick
  EXPECT_EQ(json::serialize(env.last_push.at("mirror")), R"({"cluster":"podinfo-canary","percent":100})");
  tick(s, st, env);
  ASSERT_FALSE(env.mirror_reads.empty());
  EXPECT_TRUE(env.mirror_reads.front());  // analysed on the mirror series
  EXPECT_EQ(st.weight, 25u);
  EXPECT_TRUE(env.last_push.at("mirror").is_null());  // then live weights, no mirror
}

TEST(CanaryRun, BlueGreenWithMirrorAndAB) {
  auto s = base_spec();
  s.analysis.step_weight = 0;
  s.analysis.iterations = 2;
  s.analysis.mirror = true;
  s.analysis.mirror_weight = 50;
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(100)};
  tick(s, st, env);
  tick(s, st, env);
  EXPECT_TRUE(env.saw("Advance podinfo.test canary iteration 1/2"));
  EXPECT_EQ(json::serialize(env.last_push.at("mirror")), R"({"cluster":"podinfo-canary","percent":50})");
  EXPECT_TRUE(env.last_push.at("rules").is_null());
  ASSERT_GT(ticks_until(s, st, env, canary_phase::waiting_promotion), 0);
  EXPECT_TRUE(env.saw("Stop traffic mirroring and route all traffic to canary"));
  EXPECT_EQ(env.canary_weight(), 100);

  // A/B: the match goes to the proxies as a rule for the run, and away after it.
  auto ab = base_spec();
  ab.analysis.step_weight = 0;
  ab.analysis.iterations = 1;
  ab.analysis.match = json::array{json::object{{"headers", json::object{{"x-canary", json::object{{"exact", "1"}}}}}}};
  run_state st2 = baseline();
  fake_env env2;
  env2.readings["request-success-rate"] = {value(100)};
  tick(ab, st2, env2);
  EXPECT_EQ(env2.last_push.at("rules").as_array().size(), 1u);
  EXPECT_GT(ticks_until(ab, st2, env2, canary_phase::succeeded), 0);
  EXPECT_TRUE(env2.last_push.at("rules").is_null());
  EXPECT_EQ(env2.canary_weight(), 0);
}

TEST(CanaryRun, RelativeChecksAndAbort) {
  auto s = base_spec();
  s.analysis.metrics[0].relative_to_primary = true;
  s.analysis.metrics[0].min = -1;
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(-2)};
  tick(s, st, env);
  tick(s, st, env);
  tick(s, st, env);
  EXPECT_TRUE(env.saw("Halt podinfo.test advancement success rate -2.00 points < -1")) << env.events.back();
  s.analysis.abort_max_error_rate = 50;
  s.analysis.abort_min_requests = 10;
  EXPECT_FALSE(abort_due(s, 9, 9));  // too few
  EXPECT_FALSE(abort_due(s, 100, 49));
  EXPECT_TRUE(abort_due(s, 100, 50));
}

TEST(CanaryRun, SkipAnalysisPromotesWithoutTraffic) {
  auto s = base_spec();
  s.skip_analysis = true;
  run_state st = baseline();
  fake_env env;
  EXPECT_GT(ticks_until(s, st, env, canary_phase::succeeded), 0);
  EXPECT_TRUE(env.saw("Skipping analysis for podinfo.test"));
  EXPECT_EQ(env.promotions, 1);
  EXPECT_TRUE(env.mirror_reads.empty());  // no metric was read
  EXPECT_FALSE(env.saw("Advance podinfo.test canary weight 25"));
}

TEST(CanaryRun, FirstSightInitializesWithoutARunAndALaterRevisionStartsOne) {
  auto s = base_spec();
  run_state st;  // no saved state
  fake_env env;
  env.readings["request-success-rate"] = {value(100)};
  for (int i = 0; i < 3; ++i) tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::initialized);
  EXPECT_TRUE(st.initialized);
  EXPECT_EQ(st.revision, "2");  // the baseline: what the primary runs
  EXPECT_TRUE(env.saw("Initialization done! podinfo.test"));
  EXPECT_EQ(std::count(env.events.begin(), env.events.end(), "Initialization done! podinfo.test"), 1);
  EXPECT_FALSE(env.saw("New revision detected! Scaling up podinfo.test"));
  EXPECT_EQ(env.canary_weight(), 0);  // everything to the primary
  EXPECT_TRUE(env.alerts.empty());
  s.revision = "3";  // a later change: a run
  tick(s, st, env);
  EXPECT_TRUE(env.saw("New revision detected! Scaling up podinfo.test"));
  EXPECT_EQ(st.phase, canary_phase::progressing);
  EXPECT_EQ(st.revision, "3");

  // Without spec.revision: Initialized with no baseline, until `rollout --revision`.
  auto manual = base_spec();
  manual.revision.reset();
  run_state st2;
  fake_env env2;
  tick(manual, st2, env2);
  tick(manual, st2, env2);
  EXPECT_EQ(st2.phase, canary_phase::initialized);
  EXPECT_EQ(st2.revision, "");
  st2.pending_revision = "7";
  tick(manual, st2, env2);
  EXPECT_EQ(st2.phase, canary_phase::progressing);
  EXPECT_EQ(st2.revision, "7");

  // A rollout asked for before the first tick is not swallowed by the first sight.
  run_state st3;
  st3.pending_revision = "9";
  fake_env env3;
  tick(s, st3, env3);
  EXPECT_EQ(st3.revision, "9");
  EXPECT_EQ(st3.phase, canary_phase::progressing);
  EXPECT_FALSE(env3.saw("Initialization done! podinfo.test"));
}

// vane's guard: a trip the proxies report rolls the run back at the tick that reads it; the run installs the
// guard and the fallback on the canary, and removes them when it ends.
TEST(CanaryRun, AProxyGuardTripRollsBackAtOnceAndGuardAndFallbackLastTheRun) {
  auto s = base_spec();
  s.analysis.guard = guard_spec{20, 20, std::chrono::seconds(1)};
  s.analysis.fallback = true;
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(100)};
  tick(s, st, env);  // the run starts
  tick(s, st, env);  // weight 25
  ASSERT_EQ(st.phase, canary_phase::progressing);
  ASSERT_EQ(env.canary_weight(), 25);
  EXPECT_EQ(json::serialize(env.last_push.at("guard")),
            R"({"cluster":"podinfo-canary","max_error_percent":20,"min_requests":20,"window":"1s"})");
  EXPECT_EQ(json::serialize(env.last_push.at("fallback")), R"({"from":"podinfo-canary","to":"podinfo-primary"})");
  env.guard_trip = "proxy guard tripped on 2/3 proxies (error rate 64.00% >= 20%)";
  tick(s, st, env);
  EXPECT_EQ(st.phase, canary_phase::failed);
  EXPECT_TRUE(env.saw("Rolling back podinfo.test proxy guard tripped on 2/3 proxies (error rate 64.00% >= 20%)"));
  EXPECT_EQ(env.canary_weight(), 0);
  EXPECT_TRUE(env.last_push.at("guard").is_null());
  EXPECT_TRUE(env.last_push.at("fallback").is_null());
  // The analysis' gRPC failure codes, when not the default, are the guard's too.
  s.analysis.grpc_failures = (1U << 14) | (1U << 4);
  st = baseline();
  st.phase = canary_phase::progressing;
  EXPECT_EQ(json::serialize(desired_traffic(s, st).at("guard")),
            R"({"cluster":"podinfo-canary","max_error_percent":20,"min_requests":20,"window":"1s",)"
            R"("grpc_failure_codes":["DEADLINE_EXCEEDED","UNAVAILABLE"]})");
  // A Canary without them leaves the proxies' own alone.
  auto plain = base_spec();
  EXPECT_FALSE(desired_traffic(plain, st).contains("guard"));
  EXPECT_FALSE(desired_traffic(plain, st).contains("fallback"));
}

// The abort loop may roll a run back while a tick waits on a webhook: the
// tick then does nothing more. A step after it put the canary's weight back
// on a failed run; a promotion after it promoted a rolled-back revision.
TEST(CanaryRun, ARollbackWhileATickWaitsIsNotUndoneByTheTick) {
  for (const std::string hook : {"rollback", "rollout", "confirm-traffic-increase", "confirm-promotion"}) {
    SCOPED_TRACE(hook);
    auto s = base_spec();
    run_state st = baseline();
    fake_env env;
    env.readings["request-success-rate"] = {value(100)};
    const canary_phase at = hook == "confirm-promotion" ? canary_phase::waiting_promotion : canary_phase::progressing;
    ASSERT_GT(ticks_until(s, st, env, at), 0);
    if (at == canary_phase::progressing) tick(s, st, env);  // weight 25: the next tick steps
    env.meanwhile[hook] = [&]() -> asio::awaitable<void> {
      canary_run abort_loop(s, st, env);
      co_await abort_loop.rollback("error rate 50% >= 5%");
    };
    const int promotions = env.promotions;
    tick(s, st, env);
    EXPECT_EQ(st.phase, canary_phase::failed);
    EXPECT_EQ(st.weight, 0u);
    EXPECT_EQ(env.canary_weight(), 0);
    EXPECT_EQ(env.promotions, promotions);
    tick(s, st, env);  // and it stays so
    EXPECT_EQ(st.phase, canary_phase::failed);
    EXPECT_EQ(env.canary_weight(), 0);
  }
}

// An abort asked for while a tick waits on a webhook (POST .../abort) rolls back in that tick, not
// after a step one interval later.
TEST(CanaryRun, AnAbortWhileATickWaitsRollsBackInThatTick) {
  for (const std::string hook : {"rollout", "confirm-traffic-increase"}) {
    SCOPED_TRACE(hook);
    auto s = base_spec();
    run_state st = baseline();
    fake_env env;
    env.readings["request-success-rate"] = {value(100)};
    ASSERT_GT(ticks_until(s, st, env, canary_phase::progressing), 0);
    tick(s, st, env);  // weight 25
    ASSERT_EQ(st.weight, 25u);
    env.meanwhile[hook] = [&]() -> asio::awaitable<void> {
      st.failed_checks = std::max(st.failed_checks, s.analysis.threshold);  // what apply_command("abort") does
      st.phase = canary_phase::progressing;
      co_return;
    };
    tick(s, st, env);
    EXPECT_EQ(st.phase, canary_phase::failed);
    EXPECT_EQ(st.weight, 0u);
    EXPECT_EQ(env.canary_weight(), 0);
  }
}

// Nothing rolls a run back while its promotion runs; an abort is refused then.
TEST(CanaryRun, APromotionUnderWayIsNotRolledBack) {
  auto s = base_spec();
  run_state st = baseline();
  fake_env env;
  env.readings["request-success-rate"] = {value(100)};
  ASSERT_GT(ticks_until(s, st, env, canary_phase::waiting_promotion), 0);
  struct promoting_env : fake_env {
    run_state* st = nullptr;
    bool in_flight_seen = false;
    asio::awaitable<bool> promote() override {
      in_flight_seen = st->promotion_in_flight;
      co_return co_await fake_env::promote();
    }
  };
  promoting_env penv;
  penv.readings = env.readings;
  penv.st = &st;
  tick(s, st, penv);
  EXPECT_TRUE(penv.in_flight_seen);
  EXPECT_FALSE(st.promotion_in_flight);
  EXPECT_EQ(st.phase, canary_phase::promoting);
}
