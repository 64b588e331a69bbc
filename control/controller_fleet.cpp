// The controller's dealings with the world outside, for one canary: the
// proxies' stats and traffic API, metric providers, alerts, promotion. Every
// answer is read without throwing; what cannot be read becomes a reason that
// is logged and shown in `status` (note), never a stop.
#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cmath>

#include "common/log.hpp"
#include "control/alerts.hpp"
#include "control/controller.hpp"
#include "control/prometheus.hpp"
#include "control/promotion.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;
using steady = std::chrono::steady_clock;

asio::awaitable<bool> controller::push_traffic(canary_record& c, json::object traffic) {
  std::vector<std::string> problems;
  std::vector<std::string> urls = co_await fleet_.urls(c.spec.proxies, problems);
  for (auto& p : problems) {
    log::warn("{}: {}", c.spec.id(), p);
    note(c, std::move(p));
  }
  std::vector<std::string> failures = co_await fleet_.push(urls, c.spec.route, traffic);
  bool all = problems.empty() && !urls.empty();
  for (std::size_t i = 0; i < failures.size(); ++i) {
    if (failures[i].empty()) continue;
    all = false;
    log::warn("{}: proxy {}: {}", c.spec.id(), urls[i], failures[i]);
    note(c, fmt::format("proxy {}: {}", urls[i], failures[i]));
  }
  co_return all;
}

asio::awaitable<controller::fleet_reading> controller::read_stats(canary_record& c) {
  std::vector<std::string> problems;
  fleet_reading r;
  r.urls = co_await fleet_.urls(c.spec.proxies, problems);
  const std::vector<std::string>& urls = r.urls;
  for (auto& p : problems) note(c, std::move(p));
  std::string target = "/stats/latency";  // (GCC 12: named, never a temporary, in a co_await's arguments)
  duration timeout = std::chrono::seconds(2);
  r.answers = co_await fleet_.get_all(urls, target, timeout);
  const std::vector<parsed<json::object>>& answers = r.answers;
  c.guard = sample_guards(c.spec, answers);
  const std::vector<std::string> was_unreachable = std::move(c.unreachable);
  c.unreachable.clear();
  // Proxies no longer in the list (a pod gone, `proxies` edited) take their history with them: a
  // frozen window would be read as if it were live, and one cut to a single snapshot at a new run
  // would keep every builtin check at "first window".
  // (Not when the list could not be made whole: a failed DNS lookup is not a proxy gone.)
  if (problems.empty()) {
    auto gone = [&](const auto& entry) { return std::find(urls.begin(), urls.end(), entry.first) == urls.end(); };
    std::erase_if(c.history, gone);
    std::erase_if(c.abort_last, gone);
  }
  steady::duration keep = std::chrono::minutes(1);
  for (const auto& m : c.spec.analysis.metrics) keep = std::max<steady::duration>(keep, m.interval);
  auto now = steady::now();
  for (std::size_t i = 0; i < urls.size(); ++i) {
    // An answer that cannot be read counts as an unreachable proxy: its numbers are missing, not zero.
    parsed<proxy_snapshot> snap =
        answers[i] ? read_snapshot(*answers[i].value, c.spec.route, now, c.spec.analysis.grpc_failures)
                   : parsed<proxy_snapshot>::fail(answers[i].why);
    if (!snap) {
      c.unreachable.push_back(urls[i]);
      // Read every second: logged when it becomes unreachable, not at each reading.
      if (std::find(was_unreachable.begin(), was_unreachable.end(), urls[i]) == was_unreachable.end())
        log::warn("{}: proxy {} unreachable: {}", c.spec.id(), urls[i], snap.why);
      note(c, fmt::format("proxy {}: {}", urls[i], snap.why));
      continue;
    }
    c.history[urls[i]].add(std::move(*snap.value), keep + std::chrono::seconds(1));
  }
  co_return r;
}

asio::awaitable<metric_reading> controller::read_metric(canary_record& c, const metric_spec& m, bool mirror) {
  metric_reading out;
  if (m.builtin()) {
    out = builtin_reading(m, c.history, c.unreachable.size(), c.spec.canary, c.spec.primary, mirror);
  } else {
    std::string address = m.provider_address, query = m.query;
    if (!m.template_name.empty()) {
      const std::string& ns = m.template_namespace.empty() ? c.spec.ns : m.template_namespace;
      for (const auto& t : docs_.templates) {
        if (t.name == m.template_name && t.ns == ns) {
          address = t.provider_address;
          query = t.query;
        }
      }
      if (query.empty()) {
        event(c, fmt::format("Metric template {}.{} not found", m.template_name, ns));
        co_return out;  // no values: a failed check
      }
    }
    std::string rendered = render_template(query, query_variables(c.spec, m));
    duration timeout = std::chrono::seconds(10);
    auto ex = ctx_.get_executor();
    out = co_await query_prometheus(ex, address, rendered, timeout);
    if (out.inconclusive) {
      // As Flagger: a query that gives no number is a failed check, so that a
      // backend that keeps answering badly ends the run (rolled back at the
      // threshold) instead of holding it; the reason is logged and shown.
      note(c, fmt::format("{}: {}", m.name, out.why));
      out.inconclusive = false;
    }
  }
  if (out.value && std::isfinite(*out.value)) c.metric_values[m.name] = *out.value;
  co_return out;
}

asio::awaitable<void> controller::notify(canary_record& c, std::string message, std::string severity) {
  auto ex = ctx_.get_executor();
  std::vector<std::string> failures = co_await send_alerts(ex, c.spec, c.state, docs_.providers, message, severity);
  for (const auto& f : failures) log::warn("{}: {}", c.spec.id(), f);
}

asio::awaitable<bool> controller::primary_healthy(canary_record& c) {
  if (cluster_) {
    bool ready = co_await cluster_->primary_ready(c);  // its rollout first, then the proxies' view
    if (!ready) co_return false;
  }
  std::vector<std::string> problems;
  std::vector<std::string> urls = co_await fleet_.urls(c.spec.proxies, problems);
  for (auto& p : problems) note(c, std::move(p));
  if (urls.empty()) co_return false;
  std::string target = "/clusters";
  duration timeout = std::chrono::seconds(5);
  std::vector<parsed<json::object>> answers = co_await fleet_.get_all(urls, target, timeout);
  bool all = true;
  for (std::size_t i = 0; i < urls.size(); ++i) {
    parsed<bool> healthy =
        answers[i] ? cluster_healthy(*answers[i].value, c.spec.primary) : parsed<bool>::fail(answers[i].why);
    if (!healthy) note(c, fmt::format("proxy {}: {}", urls[i], healthy.why));
    all = all && healthy.value.value_or(false);
  }
  co_return all;
}

asio::awaitable<bool> controller::promote(canary_record& c) {
  if (cluster_) {
    bool ok = co_await cluster_->promote(c);
    co_return ok;
  }
  auto ex = ctx_.get_executor();
  promotion_result r = co_await promote_primary(ex, c.spec, c.state.revision);
  if (!r.ok && !r.failure.empty()) event(c, r.failure);
  co_return r.ok;
}

}  // namespace vane::control
