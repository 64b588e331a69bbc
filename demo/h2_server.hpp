#pragma once
// vane-demo's HTTP/2 side: h2c with prior knowledge on the HTTP/1.1 port,
// known by the connection preface (as vane-proxy's listeners do). Its streams
// get the same HTTP endpoints as HTTP/1.1 (demo/endpoints.hpp) and the gRPC
// service (demo/grpc_service.hpp). nghttp2 does the framing, HPACK and the
// protocol's state machine; the loop here reads, feeds it, and writes what it
// has to say, as vane-proxy's proxy/http2/session.cpp does.
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <string_view>

#include "demo/state.hpp"

namespace vane::demo {

// The client connection preface (RFC 9113 §3.4).
inline constexpr std::string_view h2_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum class protocol { http1, h2, gone };

// Reads until the first bytes tell: the whole preface (h2), or a byte that
// differs from it (HTTP/1.1); gone when the connection ends first. What was
// read stays in `buffer` for the protocol's parser.
boost::asio::awaitable<protocol> sniff_protocol(boost::beast::tcp_stream& stream, boost::beast::flat_buffer& buffer);

// Serves an HTTP/2 connection until it ends; `received` holds the preface (and maybe more).
boost::asio::awaitable<void> serve_h2(boost::beast::tcp_stream& stream, boost::beast::flat_buffer& received, state& st);

}  // namespace vane::demo
