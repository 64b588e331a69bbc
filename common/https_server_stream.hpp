#pragma once
// Internal to common/https_server*.cpp: the stream a TLS connection of the
// shared HTTP server is served on.
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace vane::http_server_detail {

using tls_server_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

}  // namespace vane::http_server_detail
