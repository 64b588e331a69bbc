#pragma once
// The small HTTP/1.1 server under vane-proxy's admin API and vane-control's
// API: an accept loop, one coroutine per connection reading requests under a
// timeout and limits, and a handler that turns a request into a reply.
//
// The server answers what no handler sees: a body over the limit is a 413,
// a request that does not parse (or whose head is over the limit) a 400, both
// as {"error": "..."} and closed. A handler's exception is logged and answered
// with a 500; nothing that ends a connection is silently lost. Beast is
// instantiated in http_server.cpp only.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vane {

// A request as a handler sees it: views into the connection's parser, valid
// until the handler's reply is written.
struct http_server_request {
  std::string_view method;         // as sent: "GET", "PUT", ... (unknown methods too)
  std::string_view target;         // path and query
  std::string_view authorization;  // the Authorization field, "" when absent
  std::string_view body;
  std::string_view content_type;  // the Content-Type field, "" when absent
};

// A body sent in pieces as they come (a watch that stays open): called again
// and again; each piece it returns is sent as one chunk of a chunked body
// (empty pieces are skipped), and nullopt ends the body. The server's timeout
// applies to each write, not to the waits between them, which are the
// producer's to bound. The connection is closed after such a reply.
using http_body_stream = std::function<boost::asio::awaitable<std::optional<std::string>>()>;

struct http_server_reply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // more fields, after Server (WWW-Authenticate, ...)
  http_body_stream stream;                                   // when set, the body (chunked), and `body` is not sent
};

// {"error":"MESSAGE"} and a newline, application/json: how every refusal reads.
http_server_reply http_error_reply(unsigned status, std::string_view message);

// A coroutine: the admin API awaits the workers, the controller's API answers at once.
using http_handler = std::function<boost::asio::awaitable<http_server_reply>(http_server_request)>;

struct http_server_options {
  std::string server = "vane";  // the Server field
  std::string log_name;         // who the log lines name ("admin", "API")
  std::size_t header_limit = 16 * 1024;
  std::uint64_t body_limit = 1 << 20;  // more: 413 {"error":"request body over 1MiB"}
  // Waiting for (all of) a request, and writing its answer; an idle or slow connection is closed.
  std::chrono::steady_clock::duration timeout = std::chrono::seconds(30);
  bool keep_alive = true;  // keep a connection open when the client asks to
};

// Serves connections from `acceptor` until it is closed or cancelled
// (operation_aborted); another accept error (a connection reset before it was
// accepted, no file descriptor left) skips that connection. Each connection is
// served on the acceptor's executor and may outlive this coroutine; `handler`
// is kept alive by the connections.
boost::asio::awaitable<void> serve_http(boost::asio::ip::tcp::acceptor& acceptor, http_server_options options,
                                        http_handler handler);

}  // namespace vane
