#include "control/abort.hpp"

#include <fmt/format.h>

#include <boost/json/value.hpp>

namespace vane::control {

abort_sample sample_abort(const canary_spec& spec, const std::vector<std::string>& urls,
                          const std::vector<parsed<boost::json::object>>& answers,
                          std::map<std::string, proxy_snapshot>& last, std::chrono::steady_clock::time_point now) {
  abort_sample out;
  const std::string key = series_key(spec.canary, "upstream");
  for (std::size_t i = 0; i < urls.size() && i < answers.size(); ++i) {
    parsed<proxy_snapshot> snap =
        answers[i] ? read_snapshot(*answers[i].value, spec.route, now) : parsed<proxy_snapshot>::fail(answers[i].why);
    if (!snap) {
      out.problems.push_back(fmt::format("abort check: proxy {}: {}", urls[i], snap.why));
      continue;
    }
    auto before = last.find(urls[i]);
    if (before != last.end()) out.canary.add(delta(&before->second, *snap.value, key));
    last[urls[i]] = std::move(*snap.value);
  }
  return out;
}

guard_sample sample_guards(const canary_spec& spec, const std::vector<parsed<boost::json::object>>& answers) {
  guard_sample out;
  out.proxies = answers.size();
  double weighted = 0;
  for (const auto& a : answers) {
    if (!a) continue;
    const boost::json::value* guards = a.value->if_contains("guards");
    if (!guards || !guards->is_array()) continue;  // a proxy without the guard: nothing tripped there
    for (const auto& g : guards->get_array()) {
      const boost::json::object* o = g.if_object();
      if (!o) continue;
      const auto* route = o->if_contains("route");
      const auto* cluster = o->if_contains("cluster");
      const auto* tripped = o->if_contains("tripped");
      if (!route || !cluster || !tripped || !route->is_string() || !cluster->is_string() || !tripped->is_bool() ||
          route->get_string() != spec.route || cluster->get_string() != spec.canary || !tripped->get_bool())
        continue;
      ++out.tripped;
      const auto* rate = o->if_contains("error_percent");
      const auto* requests = o->if_contains("requests");
      const double r = rate && rate->is_number() ? rate->to_number<double>() : 0;
      const std::uint64_t n = requests && requests->is_uint64() ? requests->get_uint64()
                              : requests && requests->is_int64() && requests->get_int64() > 0
                                  ? static_cast<std::uint64_t>(requests->get_int64())
                                  : 0;
      weighted += r * static_cast<double>(n);
      out.requests += n;
    }
  }
  if (out.requests) out.error_percent = weighted / static_cast<double>(out.requests);
  return out;
}

std::string guard_reason(const canary_spec& spec, const guard_sample& g) {
  const double limit = spec.analysis.guard ? spec.analysis.guard->max_error_percent : 0;
  return fmt::format("proxy guard tripped on {}/{} proxies (error rate {:.2f}% >= {}%)", g.tripped, g.proxies,
                     g.error_percent, limit);
}

}  // namespace vane::control
