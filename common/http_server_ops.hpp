#pragma once
// The definitions of the stream operations declared in
// common/http_server_session.hpp. Included by the unit that compiles them
// for a stream type: common/http_server.cpp for plain TCP, one
// common/https_server_*.cpp for each operation over TLS.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <optional>
#include <string>

#include "common/http_server_session.hpp"
#include "common/log.hpp"

namespace vane::http_server_detail {

template <class Stream>
boost::asio::awaitable<boost::system::error_code> read_request(
    Stream& stream, boost::beast::flat_buffer& buffer,
    boost::beast::http::request_parser<boost::beast::http::string_body>& parser) {
  auto [ec, n] = co_await boost::beast::http::async_read(stream, buffer, parser,
                                                         boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return ec;
}

template <class Stream>
boost::asio::awaitable<boost::system::error_code> write_reply(
    Stream& stream, boost::beast::http::response<boost::beast::http::string_body>& reply) {
  auto [ec, n] =
      co_await boost::beast::http::async_write(stream, reply, boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return ec;
}

template <class Stream>
boost::asio::awaitable<bool> write_streamed(const server_state& state, Stream& stream,
                                            boost::beast::http::response<boost::beast::http::empty_body>& head,
                                            const http_body_stream& body) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
  head.chunked(true);
  http::response_serializer<http::empty_body> serializer{head};
  beast::get_lowest_layer(stream).expires_after(state.options.timeout);
  auto [hec, hn] = co_await http::async_write_header(stream, serializer, nothrow);
  if (hec) co_return false;
  for (;;) {
    std::optional<std::string> piece;
    std::exception_ptr failure;
    try {
      piece = co_await body();
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) {
      log::error("{}: a streamed body ended by an exception: {}", state.options.log_name, what_of(failure));
      co_return false;
    }
    if (!piece) break;
    if (piece->empty()) continue;
    beast::get_lowest_layer(stream).expires_after(state.options.timeout);
    auto [cec, cn] = co_await asio::async_write(stream, http::make_chunk(asio::buffer(*piece)), nothrow);
    if (cec) co_return false;
  }
  beast::get_lowest_layer(stream).expires_after(state.options.timeout);
  auto [lec, ln] = co_await asio::async_write(stream, http::make_chunk_last(), nothrow);
  co_return !lec;
}

}  // namespace vane::http_server_detail
