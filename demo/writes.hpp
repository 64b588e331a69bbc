#pragma once
// vane-demo's responses on the wire, in a translation unit of their own: each
// of Beast's composed write operations is compiled once here, not in the
// session's unit (compile time; docs/building.md).
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <string_view>

namespace vane::demo {

// Writes `res`; an error ends the exchange silently (the client went away).
boost::asio::awaitable<void> write_response(boost::beast::tcp_stream& stream,
                                            boost::beast::http::response<boost::beast::http::string_body>& res);

// Streams `n` bytes of the demo's byte pattern (/bytes/N), chunked or with a
// Content-Length, 64 KiB at a time.
boost::asio::awaitable<void> send_bytes(boost::beast::tcp_stream& stream, std::uint64_t n, bool chunked,
                                        bool keep_alive, std::string_view version);

}  // namespace vane::demo
