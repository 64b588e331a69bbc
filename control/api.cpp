#include "control/api.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "common/log.hpp"
#include "control/parse.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

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

asio::awaitable<void> api_session(tcp::socket socket, const api_handlers& h) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  http::request_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  stream.expires_after(std::chrono::seconds(30));
  auto [ec, n] = co_await http::async_read(stream, buffer, parser, nothrow);
  if (ec) co_return;
  const auto& req = parser.get();
  api_answer a = answer_api(h, req.method_string(), req.target(), req.body());
  http::response<http::string_body> res{static_cast<http::status>(a.status), 11};
  res.set(http::field::server, "vane-control");
  res.set(http::field::content_type, a.content_type);
  res.body() = std::move(a.body);
  res.keep_alive(false);
  res.prepare_payload();
  co_await http::async_write(stream, res, nothrow);
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace

asio::awaitable<void> serve_api(tcp::acceptor& acceptor, const api_handlers& h) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), api_session(std::move(socket), h), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        log::error("API: a request ended by an exception: {}", x.what());
      } catch (...) {
        log::error("API: a request ended by an exception");
      }
    });
  }
}

}  // namespace vane::control
