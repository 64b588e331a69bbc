#include "control/api.hpp"

#include <boost/json.hpp>

#include "common/http_server.hpp"
#include "control/parse.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;

std::optional<std::string> apply_command(const canary_spec& spec, run_state& st, std::string_view action,
                                         const json::object& body) {
  auto is = [&] { return spec.id() + " is " + std::string(phase_name(st.phase)); };
  if (action == "rollout") {
    std::string revision = st.revision;
    if (const auto* r = body.if_contains("revision")) {
      if (!r->is_string() || r->get_string().empty()) return "revision must be a non-empty string";
      revision = std::string(r->get_string());
    } else if (spec.revision) {
      revision = *spec.revision;
    }
    if (revision.empty()) return "no revision: give {\"revision\": R}";
    if (revision == st.revision && run_active(st)) return "revision " + revision + " is already being analysed";
    st.pending_revision = revision;
    if (revision == st.revision) st.revision.clear();  // the same revision again: a new run
  } else if (action == "promote") {
    if (st.phase != canary_phase::waiting_promotion && st.phase != canary_phase::progressing)
      return "nothing to promote: " + is();
    st.promote_confirmed = true;
  } else if (action == "abort") {
    if (!run_active(st)) return "nothing to abort: " + is();
    if (st.promotion_in_flight || st.primary_promoted)
      return "the primary is promoted (" + is() + "): nothing to abort";
    st.failed_checks = std::max(st.failed_checks, spec.analysis.threshold);
    st.phase = canary_phase::progressing;  // rolls back at its next tick, now
  } else if (action == "resume") {
    if (st.phase != canary_phase::failed) return "nothing to resume: " + is();
    st.pending_revision = st.revision;
    st.revision.clear();
  } else {
    return "unknown action '" + std::string(action) + "' (rollout, promote, abort, resume)";
  }
  return std::nullopt;
}

api_answer answer_api(const api_handlers& h, std::string_view method, std::string_view target, std::string_view body) {
  api_answer out;
  json::value answer;
  auto error = [&](unsigned s, std::string message) {
    out.status = s;
    answer = json::object{{"error", std::move(message)}};
  };
  std::string path(target.substr(0, target.find('?')));
  auto find = [&](std::string_view name) -> canary_record* {
    canary_record* found = nullptr;
    for (auto* c : h.canaries()) {
      if (c->spec.id() == name || c->spec.name == name) {
        if (found && c->spec.name == name && c->spec.id() != name) return nullptr;  // ambiguous: say NAME.NAMESPACE
        found = c;
      }
    }
    return found;
  };
  constexpr std::string_view prefix = "/canaries/";
  if (path == "/ready") {
    answer = json::object{{"ready", h.ready()}};
  } else if (path == "/metrics") {
    out.content_type = "text/plain; version=0.0.4; charset=utf-8";
    out.body = h.metrics();
    return out;
  } else if (path == "/canaries" && method == "GET") {
    json::array all;
    for (const auto* c : h.canaries()) all.push_back(h.status(*c));
    answer = json::object{{"canaries", std::move(all)}};
  } else if (path.starts_with(prefix)) {
    std::string rest = path.substr(prefix.size());
    std::string name = rest.substr(0, rest.find('/'));
    std::string action = rest.find('/') == std::string::npos ? "" : rest.substr(rest.find('/') + 1);
    canary_record* c = find(name);
    if (!c) {
      error(404, "no canary named '" + name + "' (or it is ambiguous: say NAME.NAMESPACE)");
    } else if (action.empty()) {
      if (method != "GET")
        error(405, "use GET");
      else
        answer = h.status(*c);
    } else if (method != "POST") {
      error(405, "use POST");
    } else {
      json::object request;
      if (!body.empty()) {
        auto v = parse_json_object(body);
        if (!v)
          error(400, "body must be a JSON object");
        else
          request = std::move(*v.value);
      }
      if (out.status == 200) {
        if (action != "rollout" && action != "promote" && action != "abort" && action != "resume")
          error(404, "unknown action '" + action + "' (rollout, promote, abort, resume)");
        else if (auto err = h.command(*c, action, request))
          error(409, *err);
        else
          answer = h.status(*c);
      }
    }
  } else {
    error(404,
          "unknown path " + path +
              " (GET /ready, /metrics, /canaries, /canaries/NAME; POST /canaries/NAME/rollout|promote|abort|resume)");
  }
  out.body = json::serialize(answer) + "\n";
  return out;
}

namespace {

asio::awaitable<http_server_reply> api_call(const api_handlers& h, http_server_request req) {
  api_answer a = answer_api(h, req.method, req.target, req.body);
  http_server_reply out;
  out.status = a.status;
  out.content_type = std::move(a.content_type);
  out.body = std::move(a.body);
  co_return out;
}

}  // namespace

asio::awaitable<void> serve_api(tcp::acceptor& acceptor, const api_handlers& h) {
  http_server_options options;
  options.server = "vane-control";
  options.log_name = "API";
  options.header_limit = std::size_t{8} * 1024;
  options.body_limit = 1 << 20;
  options.timeout = std::chrono::seconds(30);
  options.keep_alive = true;
  return serve_http(acceptor, std::move(options), [&h](http_server_request req) { return api_call(h, req); });
}

}  // namespace vane::control
