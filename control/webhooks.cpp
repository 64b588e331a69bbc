#include "control/webhooks.hpp"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json.hpp>

#include "common/http_client.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;

json::object hook_payload(const canary_spec& c, const run_state& st, json::object metadata) {
  return json::object{{"name", c.name},
                      {"namespace", c.ns},
                      {"phase", phase_name(st.phase)},
                      {"checksum", st.revision},
                      {"metadata", std::move(metadata)}};
}

asio::awaitable<std::vector<hook_result>> call_hooks(asio::any_io_executor ex, canary_spec c, run_state st,
                                                     std::string type) {
  std::vector<hook_result> out;
  for (const auto& h : c.analysis.webhooks) {
    if (h.type != type) continue;
    auto url = parse_http_url(h.url);
    json::object md;
    for (const auto& [k, v] : h.metadata) md[k] = v;
    std::string method = "POST", target = url ? url->target : "/", body = json::serialize(hook_payload(c, st, md));
    std::vector<std::pair<std::string, std::string>> headers;
    duration timeout = h.timeout;
    http_result r;
    if (url)
      r = co_await http_call(ex, *url, method, target, body, timeout, headers);
    else
      r.error = "not an http:// URL";
    out.push_back(
        {h.name, r.status >= 200 && r.status <= 202, r.status ? fmt::format("status {}", r.status) : r.error});
  }
  co_return out;
}

void post_event(asio::any_io_executor ex, const canary_spec& c, const run_state& st, const std::string& message) {
  std::vector<webhook_spec> hooks;
  for (const auto& h : c.analysis.webhooks)
    if (h.type == "event") hooks.push_back(h);
  if (hooks.empty()) return;
  std::string body =
      json::serialize(hook_payload(c, st, json::object{{"eventMessage", message}, {"eventType", "Normal"}}));
  for (const auto& h : hooks) {
    auto url = parse_http_url(h.url);
    if (!url) continue;
    auto send = [ex, u = *url, body, timeout = h.timeout]() -> asio::awaitable<void> {
      std::string method = "POST";
      std::vector<std::pair<std::string, std::string>> headers;
      co_await http_call(ex, u, method, u.target, body, timeout, headers);
    };
    asio::co_spawn(ex, std::move(send), asio::detached);
  }
}

}  // namespace vane::control
