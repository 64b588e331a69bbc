#pragma once
// What the API and /metrics show of the canaries: the status object of
// `GET /canaries/NAME` and the Prometheus text of `GET /metrics`.
#include <boost/json/object.hpp>
#include <map>
#include <memory>
#include <string>

#include "common/histogram.hpp"
#include "control/canary.hpp"

namespace vane::control {

// phase, revision, weight, failed checks, metrics, unreachable proxies, reason, last tick, stalled, events.
boost::json::object status_json(const canary_record& c, double now);

// vane_canary_status, _weight, vane_canaries, vane_canary_duration_seconds, _metric_analysis,
// _successes_total, _failures_total, _last_tick_timestamp_seconds, _loop_restarts_total.
std::string metrics_text(const std::map<std::string, std::unique_ptr<canary_record>>& all,
                         const log_linear_histogram& tick_durations);

}  // namespace vane::control
