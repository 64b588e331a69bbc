#include "control/webhooks.hpp"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json.hpp>
#include <chrono>

#include "common/http_client.hpp"
#include "common/log.hpp"
#include "control/parse.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// A webhook's answer in words: "status 400: <the start of its body>", or why none came. (Flagger's error
// is the answer's body: a load tester's or a gate's words on why.)
std::string answer_text(const http_result& r) {
  if (r.status == 0) return r.error;
  return r.body.empty() ? fmt::format("status {}", r.status) : fmt::format("status {}: {}", r.status, excerpt(r.body));
}

}  // namespace

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
    out.push_back({h.name, r.status >= 200 && r.status <= 202, answer_text(r)});
  }
  co_return out;
}

bool warning_event(std::string_view message) {
  return message.starts_with("Halt") || message.starts_with("Rolling back") || message.starts_with("Canary failed") ||
         message.find("not ready") != std::string_view::npos || message.find(" failed") != std::string_view::npos;
}

json::object event_metadata(const webhook_spec& hook, const std::string& message, std::int64_t unix_ms) {
  json::object md{{"eventMessage", message},
                  {"eventType", warning_event(message) ? "Warning" : "Normal"},
                  {"timestamp", std::to_string(unix_ms)}};
  for (const auto& [k, v] : hook.metadata)
    if (!md.contains(k)) md[k] = v;  // (Flagger's own keys win)
  return md;
}

void event_outbox::post(const asio::any_io_executor& ex, const canary_spec& c, const run_state& st,
                        const std::string& message) {
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const std::string id = c.id();
  lane* l = nullptr;  // (made at the first event hook: a canary without any keeps none)
  for (const auto& h : c.analysis.webhooks) {
    if (h.type != "event") continue;
    if (l == nullptr) l = &lanes_[id];
    if (l->queue.size() >= max_queued) {
      log::warn("{}: event webhook {}: {} events waiting, the oldest dropped", id, h.name, l->queue.size());
      l->queue.pop_front();
    }
    l->queue.push_back(
        {h.name, h.url, h.timeout, json::serialize(hook_payload(c, st, event_metadata(h, message, now_ms)))});
  }
  if (l != nullptr && !l->sending) {
    l->sending = true;
    asio::co_spawn(ex, drain(ex, shared_from_this(), id), asio::detached);
  }
}

asio::awaitable<void> event_outbox::drain(asio::any_io_executor ex, std::shared_ptr<event_outbox> self,
                                          std::string canary) {
  // One at a time, in order: a receiver sees a run's events as they happened. (The lane is looked up
  // again after each wait: posts add to it meanwhile.)
  for (;;) {
    lane& l = self->lanes_[canary];
    if (l.queue.empty()) {
      self->lanes_.erase(canary);  // (idle: nothing kept for a canary that is gone)
      co_return;
    }
    pending p = std::move(l.queue.front());
    l.queue.pop_front();
    auto url = parse_http_url(p.url);
    if (!url) {
      log::warn("{}: event webhook {}: {} is not an http:// URL", canary, p.hook, p.url);
      continue;
    }
    std::string method = "POST", target = url->target;
    std::vector<std::pair<std::string, std::string>> headers;
    duration timeout = p.timeout;
    http_result r = co_await http_call(ex, *url, method, target, p.body, timeout, headers);
    if (r.status < 200 || r.status > 299) log::warn("{}: event webhook {} failed: {}", canary, p.hook, answer_text(r));
  }
}

}  // namespace vane::control
