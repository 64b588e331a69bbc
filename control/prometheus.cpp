#include "control/prometheus.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cmath>

#include "common/http_client.hpp"
#include "control/parse.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;

std::string render_template(const std::string& query, const std::map<std::string, std::string>& vars) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    std::size_t open = query.find("{{", pos);
    if (open == std::string::npos) break;
    std::size_t close = query.find("}}", open);
    if (close == std::string::npos) break;
    std::string key = query.substr(open + 2, close - open - 2);
    key.erase(0, key.find_first_not_of(' '));
    key.erase(key.find_last_not_of(' ') + 1);
    out += query.substr(pos, open - pos);
    auto it = vars.find(key);
    out += it == vars.end() ? query.substr(open, close + 2 - open) : it->second;
    pos = close + 2;
  }
  out += query.substr(pos);
  return out;
}

std::map<std::string, std::string> query_variables(const canary_spec& c, const metric_spec& m) {
  std::map<std::string, std::string> vars{
      {"name", c.name},   {"namespace", c.ns},    {"target", c.target}, {"interval", format_duration(m.interval)},
      {"route", c.route}, {"primary", c.primary}, {"canary", c.canary}};
  for (const auto& [k, v] : m.template_variables) vars["variables." + k] = v;
  return vars;
}

namespace {

metric_reading inconclusive(std::string why) { return metric_reading{std::nullopt, true, std::move(why)}; }

// A sample's [timestamp, "value"] pair.
metric_reading sample_value(const json::value& pair) {
  const auto* a = pair.if_array();
  if (!a || a->size() != 2) return inconclusive(fmt::format("a sample is {}, not [time, value]", kind_of(pair)));
  const json::value& v = (*a)[1];
  std::optional<double> d;
  if (v.is_string()) {
    d = number_from_text(v.get_string());
    if (!d) return inconclusive(fmt::format("the value '{}' is not a number", excerpt(v.get_string())));
  } else if (v.is_number()) {
    d = v.to_number<double>();  // Prometheus writes strings; a number says the same
  } else {
    return inconclusive(fmt::format("the value is {}, not a number", kind_of(v)));
  }
  if (std::isnan(*d)) return metric_reading{};  // Flagger: NaN is no values
  return metric_reading{*d, false, {}};
}

}  // namespace

metric_reading read_prometheus_answer(int status, std::string_view body) {
  auto answer = parse_json_object(body);
  if (status != 200) {
    std::string error;
    if (answer)
      if (auto e = member_string(*answer.value, "error")) error = fmt::format(": {}", excerpt(*e));
    if (error.empty() && !body.empty()) error = fmt::format(": {}", excerpt(body));
    return inconclusive(fmt::format("prometheus answered {}{}", status, error));
  }
  if (!answer) return inconclusive("prometheus: " + answer.why);
  const json::object& o = *answer.value;
  auto st = member_string(o, "status");
  if (st != "success") {
    auto e = member_string(o, "error");
    return inconclusive(
        fmt::format("prometheus: status {}{}", st ? excerpt(*st) : "missing", e ? ": " + excerpt(*e) : std::string()));
  }
  const json::object* data = member_object(o, "data");
  if (!data) return inconclusive("prometheus: no data object in the answer");
  const json::value* result = data->if_contains("result");
  if (!result) return inconclusive("prometheus: no data.result in the answer");
  auto type = member_string(*data, "resultType").value_or("");
  if (type == "scalar") return sample_value(*result);
  if (type == "matrix") return inconclusive("prometheus: a range vector; the query must return one number");
  if (type == "string") return inconclusive("prometheus: a string; the query must return one number");
  const auto* series = result->if_array();
  if (!series) return inconclusive(fmt::format("prometheus: data.result is {}, not an array", kind_of(*result)));
  if (type.empty() && series->size() == 2 && !(*series)[0].is_object()) return sample_value(*result);  // scalar
  if (series->empty()) return metric_reading{};  // no values found
  if (series->size() > 1)                        // judging by one of them would pass a bad pod unseen
    return inconclusive(
        fmt::format("prometheus: {} series; the query must return one number (sum by nothing)", series->size()));
  const auto* first = (*series)[0].if_object();
  if (!first) return inconclusive(fmt::format("prometheus: a series is {}, not an object", kind_of((*series)[0])));
  const json::value* value = first->if_contains("value");
  if (!value) return inconclusive("prometheus: a series without a value");
  return sample_value(*value);
}

asio::awaitable<metric_reading> query_prometheus(asio::any_io_executor ex, std::string address, std::string query,
                                                 duration timeout) {
  auto url = parse_http_url(address);
  if (!url) co_return inconclusive(fmt::format("prometheus address '{}' is not http://HOST:PORT", address));
  std::string method = "GET", target = url->target;
  if (target.empty() || target == "/") target.clear();
  while (!target.empty() && target.back() == '/') target.pop_back();
  target += "/api/v1/query?query=" + percent_encode(query);
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  http_result r = co_await http_call(ex, *url, method, target, body, timeout, headers);
  if (r.status == 0) co_return inconclusive(fmt::format("prometheus {}: {}", address, r.error));
  co_return read_prometheus_answer(r.status, r.body);
}

}  // namespace vane::control
