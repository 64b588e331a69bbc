#include "control/alerts.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "common/http_client.hpp"
#include "control/parse.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;

json::object alert_payload(const alert_provider& p, const canary_spec& c, const run_state& st,
                           const std::string& message, const std::string& severity) {
  std::string text = fmt::format("{}: {}", c.id(), message);
  std::string user = p.username.empty() ? "vane" : p.username;
  json::object payload;
  if (p.type == "msteams") {
    payload = {{"@type", "MessageCard"},
               {"@context", "http://schema.org/extensions"},
               {"themeColor", severity == "error" ? "FF0000" : "0076D7"},
               {"summary", text},
               {"sections", json::array{json::object{{"activityTitle", c.id()}, {"text", message}}}}};
  } else if (p.type == "discord") {
    payload = {{"username", user}, {"content", text}};
  } else if (p.type == "generic") {
    payload = {{"name", c.name},          {"namespace", c.ns},    {"phase", phase_name(st.phase)},
               {"revision", st.revision}, {"severity", severity}, {"message", message}};
  } else if (p.type == "gchat") {  // (Google Chat refuses a field it does not know, such as username)
    payload = {{"text", text}};
  } else {  // slack and rocket take Slack's shape
    payload = {{"text", text}, {"username", user}};
    if (!p.channel.empty()) payload["channel"] = p.channel;
  }
  return payload;
}

bool severity_reaches(const std::string& severity, const std::string& wanted) {
  auto rank = [](const std::string& s) { return s == "error" ? 2 : s == "warn" ? 1 : 0; };
  return rank(severity) >= rank(wanted);
}

asio::awaitable<std::vector<std::string>> send_alerts(asio::any_io_executor ex, canary_spec c, run_state st,
                                                      std::vector<alert_provider> providers, std::string message,
                                                      std::string severity) {
  std::vector<std::string> failures;
  for (const auto& a : c.analysis.alerts) {
    if (!severity_reaches(severity, a.severity)) continue;
    const std::string& ns = a.provider_namespace.empty() ? c.ns : a.provider_namespace;
    const alert_provider* found = nullptr;
    for (const auto& p : providers)
      if (p.name == a.provider_name && p.ns == ns) found = &p;
    if (found == nullptr) {  // (Flagger logs it too)
      failures.push_back(fmt::format("alert {}: provider {}.{} not found", a.name, a.provider_name, ns));
      continue;
    }
    const alert_provider& p = *found;
    auto url = parse_http_url(p.address);
    if (!url) {
      failures.push_back(fmt::format("alert {}: provider {}.{} has no http:// address", a.name, p.name, ns));
      continue;
    }
    std::string method = "POST", target = url->target,
                body = json::serialize(alert_payload(p, c, st, message, severity));
    std::vector<std::pair<std::string, std::string>> headers;
    duration timeout = std::chrono::seconds(10);
    http_result r = co_await http_call(ex, *url, method, target, body, timeout, headers);
    if (r.status < 200 || r.status > 299)
      failures.push_back(
          fmt::format("alert {} to {} failed: {}", a.name, p.address, r.status ? excerpt(r.body) : r.error));
  }
  co_return failures;
}

}  // namespace vane::control
