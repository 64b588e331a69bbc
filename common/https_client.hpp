#pragma once
// The shared HTTP client (common/http_client.hpp) over TLS, for an address:
// vane-proxy's health checks of clusters that speak TLS. Apart from
// http_client.cpp because it needs OpenSSL, which only what links
// vane_asio_ssl does (vane-proxy, vane-control, the tests).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <string_view>

#include "common/http_client.hpp"

struct ssl_st;  // OpenSSL's SSL
namespace boost::asio::ssl {
class context;
}

namespace vane {

// Sets up a new connection's SSL object before its handshake (SNI, the name the peer's certificate must carry).
using tls_prepare = std::function<void(ssl_st*)>;

// As http_fetch to an address, with a TLS handshake (client side, on
// `context`) after the connection, under the same timeout. `context` must
// outlive the call. A failed handshake is "TLS handshake with ADDRESS failed: ...".
boost::asio::awaitable<http_result> https_fetch(boost::asio::any_io_executor ex,
                                                boost::asio::ip::tcp::endpoint endpoint,
                                                boost::asio::ssl::context& context, tls_prepare prepare,
                                                http_request_spec request);

// Receives a body in pieces as they arrive; returns false to stop reading.
using http_body_sink = std::function<bool(std::string_view)>;

// As https_fetch, for an answer whose body lasts (a Kubernetes watch):
// request.timeout covers the connection, the handshake, the request and the
// answer's head; after that each read of the body must bring something within
// `idle_timeout`. A 2xx answer's body goes to `on_data` as it comes (chunked
// framing removed; out.body stays empty); another status's body is read whole,
// up to request.body_limit, into out.body. out.error is empty when the body
// ended or `on_data` stopped it, "timeout from ADDRESS" when nothing came
// within idle_timeout, and says what failed otherwise.
boost::asio::awaitable<http_result> https_stream(boost::asio::any_io_executor ex,
                                                 boost::asio::ip::tcp::endpoint endpoint,
                                                 boost::asio::ssl::context& context, tls_prepare prepare,
                                                 http_request_spec request, duration idle_timeout,
                                                 http_body_sink on_data);

}  // namespace vane
