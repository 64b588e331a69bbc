#pragma once
// The small HTTP/1.1 client every vane part shares (Beast, coroutines):
// vane-control's calls to the proxies' admin API, webhooks, alert providers
// and Prometheus, and vane-proxy's active health checks. One request on a new
// connection (Connection: close): calls are a few per peer and interval, so
// pooling would buy nothing worth its state. Nothing throws for the peer's
// sake: a failure is `error`, with status 0. Beast is instantiated in
// http_client.cpp (and, over TLS, https_client.cpp) only.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/address.hpp"
#include "common/units.hpp"

namespace vane {

struct http_result {
  int status = 0;  // 0: no answer (see error)
  std::string body;
  std::string error;  // "cannot connect to HOST:PORT: ...", "timeout from HOST:PORT", ...
};

struct http_request_spec {
  std::string method = "GET";
  std::string target = "/";
  std::string host;  // the Host field; "" names the address called
  std::string user_agent = "vane";
  std::vector<std::pair<std::string, std::string>> headers;  // set after Host and User-Agent
  std::string body;  // sent with Content-Type: application/json when not empty and `headers` name none
  // Connecting (and the TLS handshake), writing and reading, together; name resolution comes before.
  duration timeout = std::chrono::seconds(5);
  std::uint64_t body_limit = std::uint64_t{64} * 1024 * 1024;  // a longer answer is an error
};

// Resolves `host` (a name or an address) and calls the first address that connects.
boost::asio::awaitable<http_result> http_fetch(boost::asio::any_io_executor ex, std::string host, std::string port,
                                               http_request_spec request);
// Calls one address, no name resolution.
boost::asio::awaitable<http_result> http_fetch(boost::asio::any_io_executor ex, boost::asio::ip::tcp::endpoint endpoint,
                                               http_request_spec request);

// vane-control's calls: METHOD target on url's host and port, with Host
// HOST:PORT and User-Agent vane-control.
boost::asio::awaitable<http_result> http_call(boost::asio::any_io_executor ex, const http_url& url, std::string method,
                                              std::string target, std::string body, duration timeout,
                                              std::vector<std::pair<std::string, std::string>> headers);
// (GCC 12: pass named variables, never temporaries, to a coroutine in a co_await expression.)

// "HOST:PORT", "[v6]:PORT": how an address reads in errors and the Host field.
std::string address_text(const boost::asio::ip::tcp::endpoint& endpoint);

}  // namespace vane
