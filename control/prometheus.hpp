#pragma once
// The Prometheus metric provider: a MetricTemplate's (or an inline) query,
// rendered with Flagger's variables, asked of /api/v1/query, and its answer
// read without throwing. An answer with no value (an empty result, NaN) is
// Flagger's "no values found" (a failed check); an answer that cannot be read
// (not 200, not JSON, another shape, a value that is not a number) is
// inconclusive, with why.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <map>
#include <string>
#include <string_view>

#include "control/run.hpp"
#include "control/spec.hpp"

namespace vane::control {

// {{ key }} replaced by vars[key]; unknown keys are left as written.
std::string render_template(const std::string& query, const std::map<std::string, std::string>& vars);

// Flagger's variables for a canary's metric: name, namespace, target, interval, variables.KEY, and vane's
// route, primary, canary.
std::map<std::string, std::string> query_variables(const canary_spec& c, const metric_spec& m);

// One /api/v1/query answer (its HTTP status and body) as a metric reading.
metric_reading read_prometheus_answer(int status, std::string_view body);

// Asks Prometheus at `address` (http://HOST:PORT) for the query's value.
boost::asio::awaitable<metric_reading> query_prometheus(boost::asio::any_io_executor ex, std::string address,
                                                        std::string query, duration timeout);

}  // namespace vane::control
