// vane-demo: the small upstream service of the demo, the tests and the
// benchmarks. It answers with its version and a little JSON, and can be told
// (by flags, or at runtime with PUT /_demo/config) to fail a share of requests
// with 500, to add latency, or to reset connections.
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "common/address.hpp"
#include "common/listen.hpp"
#include "common/units.hpp"
#include "demo/pattern.hpp"
#include "demo/writes.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr const char* usage = R"(usage: vane-demo [--listen HOST:PORT] [--version V] [--error-percent P]
                 [--error-status CODE] [--latency DURATION] [--reset-percent P]

A small HTTP/1.1 service for demos and tests of vane.

  --listen HOST:PORT   address to listen on (default 127.0.0.1:9898; port 0: the
                       OS picks one); prints "vane-demo V listening on HOST:PORT"
  --version V          the version it reports (default v1)
  --error-percent P    answer P% of requests with an error (exactly P of every 100)
  --error-status CODE  the status of those errors, 500 to 599 (default 500)
  --latency DURATION   wait this long before answering (e.g. 50ms)
  --reset-percent P    reset the connection instead of answering P% of requests

Endpoints:
  GET  /healthz          200 ok
  GET  /bytes/N          N bytes of a fixed pattern (?chunked=1: chunked)
  GET  /headers          the request headers as JSON
  GET  /_demo/stats      counters as JSON
  PUT  /_demo/config     {"error_percent":P,"error_status":503,"latency":"50ms",
                          "reset_percent":P,"version":V}  (a "deploy" of V)
  any other            {"version":V,...}; with a body: its size and FNV-1a checksum
Every answer carries the header x-version: V.
)";

struct settings {
  std::string version = "v1";
  int error_percent = 0;
  unsigned error_status = 500;
  int reset_percent = 0;
  vane::duration latency{0};
};

struct state {
  settings s;
  std::uint64_t requests = 0;  // service requests (not /_demo/ or /healthz)
  std::uint64_t errors = 0;
  std::uint64_t resets = 0;
  std::uint64_t connections_total = 0;
  std::uint64_t connections_active = 0;
  std::uint64_t service_connections = 0;  // connections whose first request was a service request
  std::uint64_t bytes_received = 0;
  std::string last_host;  // Host of the last service request (mirror copies carry "-shadow")
  std::string last_body;  // first 4 KiB of the last service request with a body (webhook and alert payloads)
  std::string hostname;
};

// Exactly p of every 100 requests: request n is picked when floor((n+1)p/100) > floor(np/100).
bool pick(std::uint64_t n, int percent) { return (n + 1) * percent / 100 > n * percent / 100; }

json::object stats_json(const state& st) {
  return {{"version", st.s.version},
          {"requests", st.requests},
          {"errors", st.errors},
          {"resets", st.resets},
          {"connections_total", st.connections_total},
          {"connections_active", st.connections_active},
          {"service_connections", st.service_connections},
          {"bytes_received", st.bytes_received},
          {"last_host", st.last_host},
          {"last_body", st.last_body},
          {"error_percent", st.s.error_percent},
          {"error_status", st.s.error_status},
          {"reset_percent", st.s.reset_percent},
          {"latency", vane::format_duration(st.s.latency)}};
}

// Applies a JSON config; on any error returns the message and changes nothing.
std::string apply_config(state& st, std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return "body must be a JSON object";
  settings next = st.s;
  for (const auto& [key, value] : v.as_object()) {
    if (key == "error_percent" || key == "reset_percent") {
      if (!value.is_int64() || value.as_int64() < 0 || value.as_int64() > 100)
        return std::string(key) + " must be an integer from 0 to 100";
      (key == "error_percent" ? next.error_percent : next.reset_percent) = static_cast<int>(value.as_int64());
    } else if (key == "error_status") {
      if (!value.is_int64() || value.as_int64() < 500 || value.as_int64() > 599)
        return "error_status must be an integer from 500 to 599";
      next.error_status = static_cast<unsigned>(value.as_int64());
    } else if (key == "version") {
      if (!value.is_string() || value.as_string().empty()) return "version must be a non-empty string";
      next.version = value.as_string();
    } else if (key == "latency") {
      auto d = value.is_string() ? vane::parse_duration(value.as_string()) : std::nullopt;
      if (!d) return "latency must be a duration such as \"50ms\"";
      next.latency = *d;
    } else {
      return "unknown key '" + std::string(key) + "'";
    }
  }
  st.s = next;
  return {};
}

template <class Body>
void finish(http::response<Body>& res, const state& st, bool keep_alive) {
  res.set(http::field::server, "vane-demo");
  res.set("x-version", st.s.version);
  res.keep_alive(keep_alive);
  res.prepare_payload();
}

asio::awaitable<void> session(tcp::socket socket, state& st) {
  ++st.connections_total;
  ++st.connections_active;
  struct active_guard {
    state& st;
    ~active_guard() { --st.connections_active; }
  } guard{st};
  beast::tcp_stream stream(std::move(socket));
  boost::system::error_code ec;
  stream.socket().set_option(tcp::no_delay(true), ec);
  beast::flat_buffer buffer;
  std::vector<char> body_buf(std::size_t{64} * 1024);
  bool first = true;
  for (;;) {
    http::request_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    stream.expires_after(std::chrono::minutes(5));
    auto [rec, rn] = co_await http::async_read_header(stream, buffer, parser, nothrow);
    if (rec) co_return;
    auto& req = parser.get();
    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    bool keep_alive = req.keep_alive();
    bool service = !path.starts_with("/_demo/") && path != "/healthz";
    if (first && service) ++st.service_connections;
    first = false;

    // Read (and checksum) the body, whatever its size, one buffer at a time.
    vane::demo::fnv1a sum;
    std::uint64_t received = 0;
    std::string small_body;  // kept only for /_demo/config
    while (!parser.is_done()) {
      req.body().data = body_buf.data();
      req.body().size = body_buf.size();
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, nothrow);
      if (bec == http::error::need_buffer) bec = {};
      if (bec) co_return;
      std::size_t got = body_buf.size() - req.body().size;
      sum.update(body_buf.data(), got);
      received += got;
      if (small_body.size() < 4096)
        small_body.append(body_buf.data(), std::min<std::size_t>(got, 4096 - small_body.size()));
    }
    st.bytes_received += received;
    if (service && received > 0) st.last_body = small_body;

    if (path == "/healthz") {
      http::response<http::string_body> res{http::status::ok, 11};
      res.body() = "ok\n";
      finish(res, st, keep_alive);
      co_await vane::demo::write_response(stream, res);
    } else if (path == "/_demo/stats") {
      http::response<http::string_body> res{http::status::ok, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = json::serialize(stats_json(st)) + "\n";
      finish(res, st, keep_alive);
      co_await vane::demo::write_response(stream, res);
    } else if (path == "/_demo/config") {
      http::response<http::string_body> res{http::status::ok, 11};
      res.set(http::field::content_type, "application/json");
      if (req.method() != http::verb::put && req.method() != http::verb::post) {
        res.result(http::status::method_not_allowed);
        res.body() = R"({"error":"use PUT with a JSON body"})"
                     "\n";
      } else if (auto err = apply_config(st, small_body); !err.empty()) {
        res.result(http::status::bad_request);
        res.body() = json::serialize(json::object{{"error", err}}) + "\n";
      } else {
        res.body() = json::serialize(stats_json(st)) + "\n";
      }
      finish(res, st, keep_alive);
      co_await vane::demo::write_response(stream, res);
    } else {
      std::uint64_t n = st.requests++;
      st.last_host = std::string(req[http::field::host]);
      if (st.s.latency.count() > 0) {
        asio::steady_timer timer(co_await asio::this_coro::executor, st.s.latency);
        co_await timer.async_wait(nothrow);
      }
      if (st.s.reset_percent > 0 && pick(n, st.s.reset_percent)) {
        ++st.resets;
        stream.socket().set_option(asio::socket_base::linger(true, 0), ec);
        stream.socket().close(ec);  // RST: linger 0
        co_return;
      }
      if (st.s.error_percent > 0 && pick(n, st.s.error_percent)) {
        ++st.errors;
        http::response<http::string_body> res{static_cast<http::status>(st.s.error_status), 11};
        res.set(http::field::content_type, "application/json");
        res.body() = json::serialize(json::object{{"version", st.s.version}, {"error", "injected failure"}}) + "\n";
        finish(res, st, keep_alive);
        co_await vane::demo::write_response(stream, res);
      } else if (path.starts_with("/bytes/")) {
        std::uint64_t count = std::strtoull(path.c_str() + 7, nullptr, 10);
        co_await vane::demo::send_bytes(stream, count, target.find("chunked=1") != std::string::npos, keep_alive,
                                        st.s.version);
      } else {
        http::response<http::string_body> res{http::status::ok, 11};
        res.set(http::field::content_type, "application/json");
        json::object o{{"version", st.s.version},
                       {"hostname", st.hostname},
                       {"method", std::string(req.method_string())},
                       {"path", path}};
        if (path == "/headers") {
          json::object headers;
          for (const auto& f : req) {
            std::string name(f.name_string());
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            auto it = headers.find(name);
            if (it != headers.end())
              it->value() = std::string(it->value().as_string()) + "," + std::string(f.value());
            else
              headers[name] = std::string(f.value());
          }
          o["headers"] = std::move(headers);
        }
        if (received > 0 || req.has_content_length() || req.chunked()) {
          o["received"] = received;
          o["checksum"] = std::to_string(sum.state);
        }
        res.body() = json::serialize(o) + "\n";
        finish(res, st, keep_alive);
        co_await vane::demo::write_response(stream, res);
      }
    }
    if (!keep_alive) {
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
  }
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, state& st) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(nothrow);
    if (ec) continue;
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), st), asio::detached);
  }
}

int bad(const std::string& message) {
  std::fprintf(stderr, "vane-demo: %s\n\n%s", message.c_str(), usage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  state st;
  std::string listen_at = "127.0.0.1:9898";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (i + 1 >= argc) return bad("unknown or incomplete argument '" + arg + "'");
    std::string value = argv[++i];
    if (arg == "--listen")
      listen_at = value;
    else if (arg == "--version")
      st.s.version = value;
    else if (arg == "--error-percent" || arg == "--reset-percent") {
      char* end = nullptr;
      long p = std::strtol(value.c_str(), &end, 10);
      if (*end || p < 0 || p > 100) return bad(arg + " needs 0..100");
      (arg == "--error-percent" ? st.s.error_percent : st.s.reset_percent) = static_cast<int>(p);
    } else if (arg == "--error-status") {
      char* end = nullptr;
      long code = std::strtol(value.c_str(), &end, 10);
      if (*end || code < 500 || code > 599) return bad("--error-status needs 500..599");
      st.s.error_status = static_cast<unsigned>(code);
    } else if (arg == "--latency") {
      auto d = vane::parse_duration(value);
      if (!d) return bad("--latency needs a duration such as 50ms");
      st.s.latency = *d;
    } else {
      return bad("unknown argument '" + arg + "'");
    }
  }
  auto hp = vane::parse_host_port(listen_at);
  if (!hp) return bad("--listen needs HOST:PORT");
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  st.hostname = host;

  asio::io_context ioc{1};
  boost::system::error_code ec;
  auto address = asio::ip::make_address(hp->host, ec);
  tcp::acceptor acceptor(ioc);
  if (!ec) acceptor = vane::listen_on(ioc.get_executor(), tcp::endpoint(address, hp->port), false, ec);
  if (ec) {
    std::fprintf(stderr, "vane-demo: cannot listen on %s: %s\n", listen_at.c_str(), ec.message().c_str());
    return 1;
  }
  auto bound = acceptor.local_endpoint();
  std::printf("vane-demo %s listening on %s\n", st.s.version.c_str(),
              vane::host_port{bound.address().to_string(), bound.port()}.to_string().c_str());
  std::fflush(stdout);
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { ioc.stop(); });
  std::signal(SIGPIPE, SIG_IGN);
  asio::co_spawn(ioc, listen(acceptor, st), asio::detached);
  ioc.run();
  return 0;
}
