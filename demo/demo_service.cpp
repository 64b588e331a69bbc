// vane-demo: the small upstream service of the demo, the tests and the
// benchmarks. It answers with its version and a little JSON, and can be told
// (by flags, or at runtime with PUT /_demo/config) to fail a share of requests
// with 500, to add latency, or to reset connections. On the same port it
// speaks HTTP/2 with prior knowledge (h2c): the same endpoints, and a small
// gRPC service (demo/grpc_service.cpp, demo/demo.proto).
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
#include "demo/endpoints.hpp"
#include "demo/h2_server.hpp"
#include "demo/pattern.hpp"
#include "demo/state.hpp"
#include "demo/writes.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
using vane::demo::state;

namespace {

constexpr const char* usage = R"(usage: vane-demo [--listen HOST:PORT] [--version V] [--error-percent P]
                 [--error-status CODE] [--grpc-error-status CODE]
                 [--latency DURATION] [--reset-percent P] [--h2-max-streams N]
                 [--h2-goaway-after N]

A small HTTP/1.1, h2c and gRPC service for demos and tests of vane.

  --listen HOST:PORT   address to listen on (default 127.0.0.1:9898; port 0: the
                       OS picks one); prints "vane-demo V listening on HOST:PORT"
  --version V          the version it reports (default v1)
  --error-percent P    answer P% of requests with an error (exactly P of every
                       100), and fail P% of the calls to vane.demo.v1.Demo
                       (exactly P of every 100; health checks are never failed)
  --error-status CODE  the HTTP status of those errors, 500 to 599 (default 500)
  --grpc-error-status CODE
                       the gRPC status of failed calls, 1 to 16 or its name
                       (default 13, internal; e.g. unavailable, 14); sent with
                       HTTP 200, in a Trailers-Only response
  --latency DURATION   wait this long before answering (e.g. 50ms), gRPC too
  --reset-percent P    reset the connection (HTTP/2: the stream) instead of
                       answering P% of requests and gRPC calls
  --h2-max-streams N   SETTINGS_MAX_CONCURRENT_STREAMS of HTTP/2 connections
                       (default 100)
  --h2-goaway-after N  end each HTTP/2 connection after N streams, as a server
                       being drained does: GOAWAY (NO_ERROR) naming the Nth as
                       the last it processes, the streams below answered, those
                       above refused (REFUSED_STREAM: safe to send again), then
                       the connection closes (default 0: never)

Endpoints (HTTP/1.1, and HTTP/2 with prior knowledge on the same port):
  GET  /healthz          200 ok
  GET  /bytes/N          N bytes of a fixed pattern (?chunked=1: chunked)
  GET  /headers          the request headers as JSON
  GET  /_demo/stats      counters as JSON (gRPC calls by status too)
  PUT  /_demo/config     {"error_percent":P,"error_status":503,"grpc_error_status":14,
                          "latency":"50ms","reset_percent":P,"version":V}  (a "deploy" of V)
  any other            {"version":V,...}; with a body: its size and FNV-1a checksum
gRPC (h2c, demo/demo.proto):
  vane.demo.v1.Demo/Echo      EchoRequest{message} -> EchoReply{message, version}
  vane.demo.v1.Demo/Count     CountRequest{count <= 10000} -> count EchoReply messages
  grpc.health.v1.Health/Check SERVING for "" and "vane.demo.v1.Demo", else NOT_FOUND
  grpc.health.v1.Health/Watch the same status, then the stream stays open
  any other method            UNIMPLEMENTED (Trailers-Only)
Every answer carries the header x-version: V.
)";

// The request's headers as JSON (/headers): lower-case names, repeated ones joined by ','.
json::object fields_json(const http::request<http::buffer_body>& req) {
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
  return headers;
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
  // The first bytes tell the protocol: HTTP/2's connection preface (h2c with prior knowledge) or HTTP/1.1.
  stream.expires_after(std::chrono::minutes(5));
  const vane::demo::protocol proto = co_await vane::demo::sniff_protocol(stream, buffer);
  if (proto == vane::demo::protocol::gone) co_return;
  if (proto == vane::demo::protocol::h2) {
    co_await vane::demo::serve_h2(stream, buffer, st);
    co_return;
  }
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
    bool service = vane::demo::is_service(path);
    if (first && service) ++st.service_connections;
    first = false;

    // Read (and checksum) the body, whatever its size, one buffer at a time.
    vane::demo::fnv1a sum;
    std::uint64_t received = 0;
    std::string small_body;  // its first 4 KiB: /_demo/config, last_body
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

    vane::demo::http_request r;
    r.method = req.method_string();
    r.target = target;
    r.path = path;
    r.host = req[http::field::host];
    r.received = received;
    r.has_body = received > 0 || req.has_content_length() || req.chunked();
    r.checksum = sum.state;
    r.small_body = small_body;
    if (path == "/headers") r.headers = fields_json(req);
    std::uint64_t n = 0;
    if (service) {
      n = vane::demo::begin_service(st, r);
      if (st.s.latency.count() > 0) {
        asio::steady_timer timer(co_await asio::this_coro::executor, st.s.latency);
        co_await timer.async_wait(nothrow);
      }
    }
    vane::demo::http_reply a = vane::demo::answer(st, r, n);
    if (a.what == vane::demo::http_reply::kind::reset) {
      stream.socket().set_option(asio::socket_base::linger(true, 0), ec);
      stream.socket().close(ec);  // RST: linger 0
      co_return;
    }
    if (a.what == vane::demo::http_reply::kind::bytes) {
      co_await vane::demo::send_bytes(stream, a.bytes, a.chunked, keep_alive, st.s.version);
    } else {
      http::response<http::string_body> res{static_cast<http::status>(a.status), 11};
      if (!a.content_type.empty()) res.set(http::field::content_type, a.content_type);
      res.body() = std::move(a.body);
      finish(res, st, keep_alive);
      co_await vane::demo::write_response(stream, res);
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
    } else if (arg == "--grpc-error-status") {
      auto code = vane::demo::parse_grpc_code(value);
      if (!code || *code == 0)
        return bad("--grpc-error-status needs a gRPC status, 1..16 or a name such as unavailable");
      st.s.grpc_error_status = *code;
    } else if (arg == "--h2-max-streams") {
      char* end = nullptr;
      long n = std::strtol(value.c_str(), &end, 10);
      if (*end || n < 1 || n > 1000000) return bad("--h2-max-streams needs 1..1000000");
      st.s.h2_max_streams = static_cast<std::uint32_t>(n);
    } else if (arg == "--h2-goaway-after") {
      char* end = nullptr;
      long n = std::strtol(value.c_str(), &end, 10);
      if (*end || n < 0 || n > 1000000) return bad("--h2-goaway-after needs 0..1000000");
      st.s.h2_goaway_after = static_cast<std::uint32_t>(n);
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
