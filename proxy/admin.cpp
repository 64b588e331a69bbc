// The admin API of vane-proxy (DESIGN.md "Admin API"), served on the control
// thread. Every bad call gets a 4xx with {"error": "..."} and changes nothing.
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include "common/http_server.hpp"
#include "common/log.hpp"
#include "proxy/runtime.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

constexpr std::size_t max_admin_body = 1 << 20;

// Compares the SHA-256 of both in constant time, so neither the content nor
// the length of the token leaks through timing.
bool token_matches(std::string_view given, const std::string& expected) {
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

admin_reply error_reply(unsigned status, std::string message) { return {status, {{"error", std::move(message)}}}; }

}  // namespace

asio::awaitable<admin_reply> handle_admin(runtime& rt, http::verb method, std::string_view target,
                                          std::string_view body) {
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/ready") {
    if (method != http::verb::get) co_return error_reply(405, "use GET");
    co_return rt.ready() ? admin_reply{200, {{"ready", true}}} : admin_reply{503, {{"ready", false}}};
  }
  if (path == "/config") {
    if (method != http::verb::get) co_return error_reply(405, "use GET");
    co_return admin_reply{200, rt.config_json()};
  }
  if (path == "/clusters") {
    if (method != http::verb::get) co_return error_reply(405, "use GET");
    // (not inside the braces: GCC 12 mishandles co_await in an aggregate initializer)
    json::object clusters = co_await rt.clusters_json();
    co_return admin_reply{200, std::move(clusters)};
  }
  if (path == "/drain") {
    if (method != http::verb::post) co_return error_reply(405, "use POST");
    rt.start_drain("POST /drain");
    co_return admin_reply{202, {{"draining", true}}};
  }
  constexpr std::string_view routes_prefix = "/routes/";
  if (path.starts_with(routes_prefix)) {
    std::string_view rest = path.substr(routes_prefix.size());
    constexpr std::string_view traffic_suffix = "/traffic";
    if (rest.ends_with(traffic_suffix)) {
      std::string_view name = rest.substr(0, rest.size() - traffic_suffix.size());
      if (method == http::verb::put) {
        admin_reply r = co_await rt.put_traffic(name, body);
        co_return r;
      }
      if (method == http::verb::delete_) {
        admin_reply r = co_await rt.delete_traffic(name);
        co_return r;
      }
      co_return error_reply(405, "use PUT or DELETE");
    }
    if (rest.find('/') == std::string_view::npos && !rest.empty()) {
      if (method != http::verb::get) co_return error_reply(405, "use GET");
      if (auto r = rt.route_json(rest)) co_return admin_reply{200, std::move(*r)};
      co_return error_reply(404, "no route named '" + std::string(rest) + "'");
    }
  }
  if (path == "/metrics") {
    if (method != http::verb::get) co_return error_reply(405, "use GET");
    admin_reply r;
    r.text = rt.metrics_text();
    co_return r;
  }
  if (path == "/stats/latency") {
    if (method != http::verb::get) co_return error_reply(405, "use GET");
    co_return admin_reply{200, rt.latency_json()};
  }
  co_return error_reply(404, "unknown admin path " + std::string(path) +
                                 " (GET /ready, /metrics, /stats/latency, /config, /clusters, /routes/NAME; PUT or "
                                 "DELETE /routes/NAME/traffic; POST /drain)");
}

namespace {

// One admin call: the bearer token (when the config has one), then handle_admin; refusals are logged.
asio::awaitable<http_server_reply> admin_call(runtime& rt, http_server_request req) {
  http::verb method = http::string_to_verb(req.method);
  std::string target(req.target);
  std::string_view path = std::string_view(target).substr(0, target.find('?'));
  bool open_path = method == http::verb::get && (path == "/ready" || path == "/metrics");
  const std::string& token = rt.admin_token();
  constexpr std::string_view bearer = "Bearer ";
  admin_reply reply;
  if (!token.empty() && !open_path &&
      !(req.authorization.starts_with(bearer) && token_matches(req.authorization.substr(bearer.size()), token))) {
    reply = error_reply(401, "missing or wrong bearer token");
  } else {
    reply = co_await handle_admin(rt, method, target, req.body);
  }
  if (reply.status >= 400 && method != http::verb::unknown && reply.body.contains("error"))
    log::info("admin: {} {} -> {}: {}", std::string(http::to_string(method)), target, reply.status,
              std::string(reply.body.at("error").as_string()));
  http_server_reply out;
  out.status = reply.status;
  if (reply.status == 401) out.headers.emplace_back("WWW-Authenticate", "Bearer");
  if (!reply.text.empty()) {
    out.content_type = "text/plain; version=0.0.4; charset=utf-8";
    out.body = std::move(reply.text);
  } else {
    out.body = json::serialize(reply.body) + "\n";
  }
  co_return out;
}

}  // namespace

asio::awaitable<void> runtime::serve_admin() {
  http_server_options options;
  options.server = "vane";
  options.log_name = "admin";
  options.header_limit = 16 * 1024;
  options.body_limit = max_admin_body;  // 413 {"error":"request body over 1MiB"}
  options.timeout = std::chrono::seconds(30);
  options.keep_alive = true;
  return serve_http(*admin_acceptor_, std::move(options),
                    [this](http_server_request req) { return admin_call(*this, req); });
}

}  // namespace vane::proxy
