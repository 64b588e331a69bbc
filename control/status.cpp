#include "control/status.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cmath>

#include "common/metrics.hpp"

namespace vane::control {

namespace json = boost::json;

bool stalled(const canary_record& c, double now) {
  if (!run_active(c.state) || c.last_tick <= 0) return false;
  double interval = std::chrono::duration<double>(next_interval(c.spec, c.state)).count();
  return now - c.last_tick > 3 * interval;
}

json::object status_json(const canary_record& c, double now) {
  const auto& st = c.state;
  json::array events;
  for (const auto& e : c.events) events.push_back(json::string(e));
  json::object metrics;
  for (const auto& [k, v] : c.metric_values) metrics[k] = v;
  json::array unreachable;
  for (const auto& u : c.unreachable) unreachable.push_back(json::string(u));
  // The proxies' guard on the canary (vane), when the Canary asks for one.
  json::value guard = nullptr;
  if (c.spec.analysis.guard)
    guard = json::object{{"tripped_proxies", c.guard.tripped},
                         {"proxies", c.guard.proxies},
                         {"error_percent", percent_value(std::round(c.guard.error_percent * 100) / 100)}};
  json::value last_tick = nullptr;
  if (c.last_tick > 0) last_tick = std::floor((now - c.last_tick) * 1000) / 1000;
  return {{"name", c.spec.name},
          {"namespace", c.spec.ns},
          {"route", c.spec.route},
          {"phase", phase_name(st.phase)},
          {"revision", st.revision},
          {"canary_weight", st.weight},
          {"failed_checks", st.failed_checks},
          {"threshold", c.spec.analysis.threshold},
          {"iterations", st.iterations},
          {"last_transition", st.last_transition},
          {"metrics", std::move(metrics)},
          {"unreachable_proxies", std::move(unreachable)},
          {"reason", c.reason},
          {"guard", std::move(guard)},
          {"last_tick_seconds_ago", std::move(last_tick)},
          {"stalled", stalled(c, now)},
          {"events", std::move(events)}};
}

std::string metrics_text(const std::map<std::string, std::unique_ptr<canary_record>>& all,
                         const log_linear_histogram& tick_durations) {
  std::string out;
  metrics::prometheus_writer w(out);
  w.family("vane_canary_status", "gauge", "Canary phase: 0 Progressing, 2 Failed, 1 any other.");
  for (const auto& [id, c] : all) {
    if (c->removed) continue;
    metrics::label l[] = {{"name", c->spec.name}, {"namespace", c->spec.ns}};
    double v = c->state.phase == canary_phase::progressing ? 0 : c->state.phase == canary_phase::failed ? 2 : 1;
    w.sample("vane_canary_status", l, v);
  }
  w.family("vane_canary_weight", "gauge", "Traffic weight of the primary and canary workloads.");
  for (const auto& [id, c] : all) {
    if (c->removed) continue;
    metrics::label p[] = {{"workload", c->spec.primary}, {"namespace", c->spec.ns}};
    metrics::label k[] = {{"workload", c->spec.canary}, {"namespace", c->spec.ns}};
    w.sample("vane_canary_weight", p, std::uint64_t{100 - c->state.weight});
    w.sample("vane_canary_weight", k, std::uint64_t{c->state.weight});
  }
  w.family("vane_canaries", "gauge", "Canaries loaded, by namespace.");
  std::map<std::string, std::uint64_t> per_ns;
  for (const auto& [id, c] : all)
    if (!c->removed) ++per_ns[c->spec.ns];
  for (const auto& [ns, n] : per_ns) {
    metrics::label l[] = {{"namespace", ns}};
    w.sample("vane_canaries", l, n);
  }
  w.family("vane_canary_duration_seconds", "histogram", "Duration of one analysis tick.");
  w.histogram_seconds("vane_canary_duration_seconds", {}, tick_durations, metrics::duration_bounds());
  w.family("vane_canary_metric_analysis", "gauge", "Last value of each analysis metric.");
  for (const auto& [id, c] : all) {
    if (c->removed) continue;
    for (const auto& [m, v] : c->metric_values) {
      metrics::label l[] = {{"name", c->spec.name}, {"namespace", c->spec.ns}, {"metric", m}};
      w.sample("vane_canary_metric_analysis", l, v);
    }
  }
  w.family("vane_canary_successes_total", "counter", "Runs that were promoted.");
  for (const auto& [id, c] : all) {
    metrics::label l[] = {{"name", c->spec.name}, {"namespace", c->spec.ns}};
    w.sample("vane_canary_successes_total", l, c->successes);
  }
  w.family("vane_canary_failures_total", "counter", "Runs that were rolled back.");
  for (const auto& [id, c] : all) {
    metrics::label l[] = {{"name", c->spec.name}, {"namespace", c->spec.ns}};
    w.sample("vane_canary_failures_total", l, c->failures);
  }
  w.family("vane_canary_last_tick_timestamp_seconds", "gauge",
           "When the canary's analysis loop last ended a tick (unix seconds; 0 before its first).");
  for (const auto& [id, c] : all) {
    if (c->removed) continue;
    metrics::label l[] = {{"name", c->spec.name}, {"namespace", c->spec.ns}};
    w.sample("vane_canary_last_tick_timestamp_seconds", l, c->last_tick);
  }
  w.family("vane_canary_loop_restarts_total", "counter",
           "Analysis and abort loops started again after an unexpected exception.");
  for (const auto& [id, c] : all) {
    metrics::label l[] = {{"name", c->spec.name}, {"namespace", c->spec.ns}};
    w.sample("vane_canary_loop_restarts_total", l, c->loop_restarts);
  }
  return out;
}

}  // namespace vane::control
