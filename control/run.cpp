#include "control/run.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cmath>

#include "common/grpc.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// A duration in ms written as Go writes time.Duration (Flagger's messages): 1.515s, 500ms.
std::string go_duration(double ms) {
  if (ms >= 1000) return fmt::format("{}s", std::round(ms) / 1000.0);
  return fmt::format("{}ms", std::round(ms * 1000) / 1000.0);
}

bool iterations_strategy(const canary_spec& s) {
  return s.analysis.iterations > 0 && s.analysis.step_weight == 0 && s.analysis.step_weights.empty();
}

std::uint32_t max_weight(const canary_spec& s) {
  if (s.analysis.step_weight == 0 && !s.analysis.step_weights.empty()) return s.analysis.step_weights.back().weight;
  return s.analysis.max_weight;
}

std::string timestamp_now() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

}  // namespace

bool run_active(const run_state& st) {
  switch (st.phase) {
    case canary_phase::waiting:
    case canary_phase::progressing:
    case canary_phase::waiting_promotion:
    case canary_phase::promoting:
    case canary_phase::finalising:
      return true;
    case canary_phase::initialized:
    case canary_phase::succeeded:
    case canary_phase::failed:
      return false;
  }
  return false;
}

bool mirroring(const canary_spec& s, const run_state& st) {
  return s.analysis.mirror && st.phase == canary_phase::progressing && (iterations_strategy(s) || st.weight == 0);
}

json::value percent_value(double p) {
  if (p == std::floor(p)) return static_cast<std::int64_t>(p);
  return p;
}

json::object desired_traffic(const canary_spec& s, const run_state& st) {
  json::object t;
  t["split"] = json::array{json::object{{"cluster", s.primary}, {"weight", 100 - st.weight}},
                           json::object{{"cluster", s.canary}, {"weight", st.weight}}};
  bool analysing = st.phase == canary_phase::progressing || st.phase == canary_phase::waiting_promotion;
  if (analysing && iterations_strategy(s) && !s.analysis.match.empty()) {
    t["rules"] = json::array{json::object{{"match", s.analysis.match}, {"cluster", s.canary}}};
  } else if (analysing && iterations_strategy(s) && !s.analysis.mirror) {
    // Blue/green: no live traffic, but tests and load through the proxies reach the canary and are measured.
    json::array match{json::object{{"headers", json::object{{"x-vane-canary", json::object{{"exact", "always"}}}}}}};
    t["rules"] = json::array{json::object{{"match", std::move(match)}, {"cluster", s.canary}}};
  } else {
    t["rules"] = nullptr;
  }
  if (mirroring(s, st))
    t["mirror"] = json::object{{"cluster", s.canary}, {"percent", s.analysis.mirror_weight}};
  else
    t["mirror"] = nullptr;
  if (s.analysis.affinity_cookie && run_active(st)) {
    json::object a{
        {"cookie", *s.analysis.affinity_cookie},
        {"max_age",
         fmt::format("{}s", std::chrono::duration_cast<std::chrono::seconds>(s.analysis.affinity_max_age).count())},
        {"value", st.affinity_value}};
    if (!s.analysis.affinity_primary_cookie.empty()) a["primary_cookie"] = s.analysis.affinity_primary_cookie;
    t["session_affinity"] = std::move(a);
  } else {
    t["session_affinity"] = nullptr;
  }
  // The guard and the fallback (vane) for the run's time; left alone when the Canary asks for neither.
  if (s.analysis.guard) {
    const guard_spec& g = *s.analysis.guard;
    if (run_active(st)) {
      json::object guard{{"cluster", s.canary},
                         {"max_error_percent", percent_value(g.max_error_percent)},
                         {"min_requests", g.min_requests},
                         {"window", format_duration(g.window)}};
      // The gRPC statuses that count as failures: the analysis' (sent only when not the default, which the
      // proxy has as its own).
      if (s.analysis.grpc_failures != grpc_default_failures) {
        json::array codes;
        for (const auto name : grpc_code_names(s.analysis.grpc_failures)) codes.emplace_back(name);
        guard["grpc_failure_codes"] = std::move(codes);
      }
      t["guard"] = std::move(guard);
    } else {
      t["guard"] = nullptr;
    }
  }
  if (s.analysis.fallback) {
    if (run_active(st))
      t["fallback"] = json::object{{"from", s.canary}, {"to", s.primary}};
    else
      t["fallback"] = nullptr;
  }
  return t;
}

duration next_interval(const canary_spec& s, const run_state& st) {
  if (st.phase == canary_phase::progressing && s.analysis.step_weight == 0 && st.steps > 0 &&
      st.steps <= s.analysis.step_weights.size())
    if (auto own = s.analysis.step_weights[st.steps - 1].interval) return *own;
  return s.analysis.interval;
}

bool abort_due(const canary_spec& s, std::uint64_t total, std::uint64_t errors) {
  if (!s.analysis.abort_max_error_rate || total == 0 || total < s.analysis.abort_min_requests) return false;
  return 100.0 * static_cast<double>(errors) / static_cast<double>(total) >= *s.analysis.abort_max_error_rate;
}

void canary_run::set_phase(canary_phase phase) {
  if (st_.phase == phase) return;
  st_.phase = phase;
  st_.last_transition = timestamp_now();
  env_.changed();
}

void canary_run::start_run(const std::string& revision) {
  bool restart = run_active(st_);
  st_.revision = revision;
  st_.pending_revision.clear();
  st_.weight = 0;
  st_.failed_checks = 0;
  st_.iterations = 0;
  st_.steps = 0;
  st_.pre_rollout_done = false;
  st_.promote_confirmed = false;
  st_.primary_promoted = false;
  st_.promotion_in_flight = false;
  st_.gate_alerted.clear();
  st_.affinity_value = env_.new_affinity_value();
  env_.event(fmt::format("New revision detected! {} {}", restart ? "Restarting analysis for" : "Scaling up", s_.id()));
  set_phase(canary_phase::waiting);
}

asio::awaitable<bool> canary_run::hooks_pass(std::string type) {
  std::vector<hook_result> results = co_await env_.call_hooks(type);
  bool all = true;
  for (const auto& r : results) {
    if (type == "pre-rollout") {
      env_.event(r.pass ? fmt::format("Pre-rollout check {} passed", r.name)
                        : fmt::format("Pre-rollout check {} failed: {}", r.name, r.detail));
    } else if (type == "post-rollout") {
      env_.event(fmt::format("Post-rollout check {} {}", r.name, r.pass ? "passed" : "failed: " + r.detail));
    } else if (type == "rollout" && !r.pass) {
      env_.event(fmt::format("Halt {} advancement external check {} failed: {}", s_.id(), r.name, r.detail));
    } else if (!r.pass && type != "rollback") {
      std::string message = fmt::format("Halt {} advancement waiting for approval {}", s_.id(), r.name);
      env_.event(message);
      if (st_.gate_alerted != type) {  // once per hold, not every tick
        st_.gate_alerted = type;
        std::string severity = "warn";
        co_await env_.alert(message, severity);
      }
    }
    all = all && r.pass;
  }
  if (all && st_.gate_alerted == type) st_.gate_alerted.clear();
  co_return all;
}

asio::awaitable<bool> canary_run::analysis_passes() {
  co_await env_.refresh();
  if (s_.analysis.guard) {
    if (std::optional<std::string> why = env_.guard_tripped()) {
      rollback_now_ = std::move(why);
      co_return false;
    }
  }
  const bool mirror = mirroring(s_, st_) && st_.weight == 0;
  for (const auto& m : s_.analysis.metrics) {
    metric_reading r = co_await env_.read_metric(m, mirror);
    if (r.inconclusive) {
      env_.event(fmt::format("Halt {} advancement {} inconclusive: {}", s_.id(), m.name, r.why));
      co_return false;
    }
    if (!r.value) {
      ++st_.failed_checks;
      if (!r.why.empty())
        env_.event(fmt::format("Halt {} advancement {} unreadable: {}", s_.id(), m.name, r.why));
      else
        env_.event(fmt::format("Halt advancement no values found for {} metric {} probably {} is not receiving traffic",
                               m.name, s_.id(), s_.id()));
      env_.changed();
      co_return false;
    }
    const double v = *r.value;
    const bool rate = m.name == "request-success-rate" && m.builtin();
    const bool latency = m.name == "request-duration" && m.builtin();
    auto describe = [&](double x) {
      if (rate) return m.relative_to_primary ? fmt::format("{:.2f} points", x) : fmt::format("{:.2f}%", x);
      if (latency) return m.relative_to_primary ? fmt::format("{:.2f}x", x) : go_duration(x);
      return fmt::format("{:.2f}", x);
    };
    auto bound = [&](double b) {
      if (rate && !m.relative_to_primary) return fmt::format("{}%", b);
      if (latency && !m.relative_to_primary) return go_duration(b);
      return fmt::format("{}", b);
    };
    std::string label = rate ? "success rate" : latency ? "request duration" : m.name;
    std::optional<std::string> halt;
    if (m.min && v < *m.min) halt = fmt::format("{} {} < {}", label, describe(v), bound(*m.min));
    if (m.max && v > *m.max) halt = fmt::format("{} {} > {}", label, describe(v), bound(*m.max));
    if (halt) {
      ++st_.failed_checks;
      env_.event(fmt::format("Halt {} advancement {}", s_.id(), *halt));
      env_.changed();
      co_return false;
    }
  }
  co_return true;
}

asio::awaitable<void> canary_run::rollback_if_due() {
  // The readings awaited: the abort loop may have rolled the run back meanwhile.
  if (st_.phase != canary_phase::progressing && st_.phase != canary_phase::waiting_promotion) {
    rollback_now_.reset();
    co_return;
  }
  if (rollback_now_) {
    std::string reason = *rollback_now_;
    rollback_now_.reset();
    co_await rollback(reason);
  } else if (st_.failed_checks >= s_.analysis.threshold) {
    // The tick whose failed check reaches the threshold rolls back (not the next one).
    std::string reason = fmt::format("failed checks threshold reached {}", st_.failed_checks);
    co_await rollback(reason);
  }
}

asio::awaitable<void> canary_run::rollback(std::string reason) {
  env_.event(fmt::format("Rolling back {} {}", s_.id(), reason));
  st_.weight = 0;
  set_phase(canary_phase::failed);
  co_await push_traffic();
  env_.event(fmt::format("Canary failed! Scaling down {}", s_.id()));
  env_.finished(false);
  std::string message = "Canary analysis failed: " + reason, severity = "error";
  co_await env_.alert(message, severity);
  std::string type = "post-rollout";
  co_await hooks_pass(type);
}

asio::awaitable<void> canary_run::push_traffic() {
  json::object traffic = desired_traffic(s_, st_);
  st_.traffic_unsure = !co_await env_.push(traffic);
}

asio::awaitable<bool> canary_run::ended_meanwhile() {
  if (st_.phase != canary_phase::progressing) co_return true;  // rolled back (the abort loop)
  if (st_.failed_checks >= s_.analysis.threshold) {            // an abort: the rollback now
    co_await rollback_if_due();
    co_return true;
  }
  co_return false;
}

asio::awaitable<bool> canary_run::rolled_back_by_hook() {
  const canary_phase before = st_.phase;
  std::string type = "rollback";
  std::vector<hook_result> results = co_await env_.call_hooks(type);
  if (st_.phase != before) co_return true;  // rolled back (the abort loop) or aborted meanwhile
  if (before == canary_phase::progressing && co_await ended_meanwhile()) co_return true;
  for (const auto& r : results) {
    if (!r.pass) continue;
    std::string reason = fmt::format("rollback webhook {} triggered", r.name);
    co_await rollback(reason);
    co_return true;
  }
  co_return false;
}

asio::awaitable<void> canary_run::progressing() {
  const auto& an = s_.analysis;
  if (st_.failed_checks >= an.threshold) {
    co_await rollback_if_due();
    co_return;
  }
  // After each wait below: the abort loop may have rolled the run back meanwhile, or an abort asked
  // for it; the tick then does no more (a step now would put the canary's weight back).
  if (!st_.pre_rollout_done) {
    std::string type = "pre-rollout";
    const bool passed = co_await hooks_pass(type);
    if (co_await ended_meanwhile()) co_return;
    if (!passed) {
      ++st_.failed_checks;
      env_.changed();
      co_return;
    }
    st_.pre_rollout_done = true;
  }
  std::string rollout_type = "rollout";
  const bool rollout_passed = co_await hooks_pass(rollout_type);
  if (co_await ended_meanwhile()) co_return;
  if (!rollout_passed) {
    ++st_.failed_checks;
    env_.changed();
    co_return;
  }
  if (st_.weight > 0 || iterations_strategy(s_) || mirroring(s_, st_)) {
    bool passed = co_await analysis_passes();
    if (!passed) {
      co_await rollback_if_due();
      co_return;
    }
    if (co_await ended_meanwhile()) co_return;
  }
  // As Flagger's, which stops when it cannot set the routes: no step while the weight set last is not
  // known to be in effect on every proxy (a canary whose metrics would not notice could walk to promotion).
  if (st_.traffic_unsure) {
    env_.event(fmt::format("Halt {} advancement: the last traffic change did not reach every proxy", s_.id()));
    co_return;
  }
  if (iterations_strategy(s_)) {
    if (st_.iterations < an.iterations) {
      ++st_.iterations;
      env_.event(fmt::format("Advance {} canary iteration {}/{}", s_.id(), st_.iterations, an.iterations));
      env_.changed();
      co_return;
    }
    if (an.match.empty()) {
      st_.weight = 100;
      env_.event(an.mirror ? "Stop traffic mirroring and route all traffic to canary"
                           : "Routing all traffic to canary");
    }
    set_phase(canary_phase::waiting_promotion);
    co_return;
  }
  std::uint32_t top = max_weight(s_);
  if (st_.weight < top) {
    std::string type = "confirm-traffic-increase";
    const bool confirmed = co_await hooks_pass(type);
    if (co_await ended_meanwhile() || !confirmed) co_return;
    if (s_.analysis.guard) {
      // A step PUTs a new policy, which resets a proxy's tripped guard: look at the guards just before.
      co_await env_.refresh();
      rollback_now_ = env_.guard_tripped();
      if (rollback_now_) {
        co_await rollback_if_due();
        co_return;
      }
      if (co_await ended_meanwhile()) co_return;  // rolled back, or an abort came, while it read
    }
    if (an.step_weight > 0)
      st_.weight = std::min(st_.weight + an.step_weight, top);
    else
      st_.weight = an.step_weights[std::min<std::size_t>(st_.steps++, an.step_weights.size() - 1)].weight;
    env_.event(fmt::format("Advance {} canary weight {}", s_.id(), st_.weight));
    env_.changed();
    co_return;
  }
  set_phase(canary_phase::waiting_promotion);
}

asio::awaitable<void> canary_run::waiting_promotion() {
  bool ok = true;
  if (!s_.skip_analysis) {
    if (st_.failed_checks >= s_.analysis.threshold) {
      co_await rollback_if_due();
      co_return;
    }
    ok = co_await analysis_passes();  // metrics keep running while promotion waits
    if (!ok) co_await rollback_if_due();
    if (st_.phase != canary_phase::waiting_promotion) co_return;
  }
  std::string type = "confirm-promotion";
  bool gate_ok = st_.promote_confirmed;
  if (!gate_ok) gate_ok = co_await hooks_pass(type);
  if (st_.phase != canary_phase::waiting_promotion) co_return;  // rolled back or aborted meanwhile
  if (!ok || !gate_ok) co_return;
  if (s_.promote) {
    // Once the primary is being changed, nothing rolls the run back until that ends (abort_loop, abort).
    st_.promotion_in_flight = true;
    st_.primary_promoted = co_await env_.promote();
    st_.promotion_in_flight = false;
    if (!st_.primary_promoted) {
      ++st_.failed_checks;
      env_.changed();
    }
  } else if (!st_.primary_promoted) {
    st_.primary_promoted = st_.promote_confirmed;
    if (!st_.primary_promoted && st_.gate_alerted != "promote") {
      st_.gate_alerted = "promote";
      env_.event(fmt::format("Waiting for vane-control promote {} (no promote command or url)", s_.name));
    }
  }
  if (st_.primary_promoted) {
    st_.gate_alerted.clear();
    env_.event(fmt::format("Copying {} template spec to {}.{}", s_.id(), s_.primary, s_.ns));
    st_.promoting_since = env_.now();
    set_phase(canary_phase::promoting);
  }
}

asio::awaitable<void> canary_run::promoting() {
  st_.promotion_in_flight = false;  // (a promote() that threw left it set)
  if (st_.promoting_since == 0) {
    // Resumed from what does not keep it (a Canary's status, after a failover): the primary's wait
    // counts from now, not from 1970 (which rolled back at once).
    st_.promoting_since = env_.now();
    env_.changed();
  }
  if (!co_await env_.primary_healthy()) {
    auto timeout = s_.promote ? s_.promote->timeout : std::chrono::minutes(5);
    if (env_.now() - st_.promoting_since > std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) {
      std::string reason = "primary not healthy on every proxy after promotion";
      co_await rollback(reason);
    }
    co_return;
  }
  if (s_.analysis.step_weight_promotion > 0 && st_.weight > s_.analysis.step_weight_promotion) {
    st_.weight -= s_.analysis.step_weight_promotion;
    env_.event(fmt::format("Advance {} primary weight {}", s_.id(), 100 - st_.weight));
    env_.changed();
    co_return;
  }
  st_.weight = 0;
  env_.event("Routing all traffic to primary");
  set_phase(canary_phase::finalising);
}

asio::awaitable<void> canary_run::tick() {
  if (!st_.initialized) {
    // Flagger's first sight: the revision the canary has now is what the primary runs, the baseline; only a
    // later change (or `rollout`) starts a run. A rollout asked for before the first tick still starts one.
    st_.initialized = true;
    if (st_.phase == canary_phase::initialized && st_.pending_revision.empty()) {
      st_.revision = s_.revision.value_or("");
      st_.spec_revision = st_.revision;
      env_.event(fmt::format("Initialization done! {}", s_.id()));
      env_.changed();
      co_await push_traffic();
      co_return;
    }
    env_.changed();
  }
  // A run starts for a revision `rollout` asked for, or when the spec's revision changed (Flagger's
  // "new revision detected"); the spec's revision alone does not undo one that `rollout` gave.
  const bool spec_changed = s_.revision && *s_.revision != st_.spec_revision;
  std::string wanted = st_.pending_revision;
  if (wanted.empty() && spec_changed) wanted = *s_.revision;
  // Seen now, unless it changed as a pending revision is taken: then it starts its own run next tick.
  if (spec_changed && (st_.pending_revision.empty() || st_.spec_revision.empty())) {
    st_.spec_revision = *s_.revision;
    env_.changed();
  }
  if (!wanted.empty() && wanted != st_.revision) {
    start_run(wanted);
    std::string message = "New revision detected, starting canary analysis", severity = "info";
    co_await env_.alert(message, severity);
  }
  if (st_.phase == canary_phase::waiting || st_.phase == canary_phase::progressing) {
    workload_readiness ready = co_await env_.canary_ready();
    if (st_.phase != canary_phase::waiting && st_.phase != canary_phase::progressing)
      co_return;  // rolled back meanwhile
    if (ready.failure) {
      std::string reason = *ready.failure;
      co_await rollback(reason);
      co_return;
    }
    if (!ready.ready) {
      if (!ready.waiting.empty()) env_.event(ready.waiting);
      co_await push_traffic();
      co_return;
    }
  }
  // Flagger's manual rollback: a rollback webhook answering 2xx rolls the run back, while it waits
  // to start, analyses or waits for promotion.
  if (st_.phase == canary_phase::waiting || st_.phase == canary_phase::progressing ||
      st_.phase == canary_phase::waiting_promotion) {
    if (co_await rolled_back_by_hook()) co_return;
  }
  if (st_.phase == canary_phase::waiting) {
    std::string type = "confirm-rollout";
    const bool confirmed = co_await hooks_pass(type);
    if (confirmed && st_.phase == canary_phase::waiting) {  // (not aborted meanwhile)
      if (s_.skip_analysis) {
        env_.event(fmt::format("Skipping analysis for {}", s_.id()));
        st_.promote_confirmed = true;
        set_phase(canary_phase::waiting_promotion);
      } else {
        env_.event(fmt::format("Starting canary analysis for {}", s_.id()));
        set_phase(canary_phase::progressing);
      }
    }
  } else if (st_.phase == canary_phase::progressing) {
    co_await progressing();
  } else if (st_.phase == canary_phase::waiting_promotion) {
    co_await waiting_promotion();
  } else if (st_.phase == canary_phase::promoting) {
    co_await promoting();
  } else if (st_.phase == canary_phase::finalising) {
    set_phase(canary_phase::succeeded);
    env_.event(fmt::format("Promotion completed! Scaling down {}", s_.id()));
    env_.finished(true);
    co_await push_traffic();
    std::string message = "Canary analysis completed successfully, promotion finished.", severity = "info";
    co_await env_.alert(message, severity);
    std::string type = "post-rollout";
    co_await hooks_pass(type);
    co_return;
  }
  co_await push_traffic();  // level-triggered: every tick, every proxy
}

}  // namespace vane::control
