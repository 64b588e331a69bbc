#include "control/abort.hpp"

#include <fmt/format.h>

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

}  // namespace vane::control
