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
    parsed<proxy_snapshot> snap = answers[i]
                                      ? read_snapshot(*answers[i].value, spec.route, now, spec.analysis.grpc_failures)
                                      : parsed<proxy_snapshot>::fail(answers[i].why);
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
    const boost::json::array* guards = member_array(*a.value, "guards");
    if (!guards) continue;  // a proxy without the guard: nothing tripped there
    for (const auto& g : *guards) {
      const boost::json::object* o = g.if_object();
      if (!o || member_string(*o, "route") != spec.route || member_string(*o, "cluster") != spec.canary ||
          member_bool(*o, "tripped") != true)
        continue;
      ++out.tripped;
      const double rate = o->contains("error_percent") ? as_number(o->at("error_percent")).value_or(0) : 0;
      const std::uint64_t n = o->contains("requests") ? as_count(o->at("requests")).value_or(0) : 0;
      weighted += rate * static_cast<double>(n);
      out.requests += n;
    }
  }
  if (out.requests) out.error_percent = weighted / static_cast<double>(out.requests);
  return out;
}

std::optional<std::string> guard_reason(const canary_spec& spec, const guard_sample& g) {
  if (!spec.analysis.guard || g.tripped == 0) return std::nullopt;
  return fmt::format("proxy guard tripped on {}/{} proxies (error rate {:.2f}% >= {}%)", g.tripped, g.proxies,
                     g.error_percent, spec.analysis.guard->max_error_percent);
}

}  // namespace vane::control
