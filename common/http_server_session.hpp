#pragma once
// Internal to common/http_server.cpp and common/https_server*.cpp: the
// accept loop and the requests of one connection, over a plain or a TLS
// stream. Not for other files: it brings Beast's templates with it.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <memory>
#include <string>

#include "common/http_server.hpp"
#include "common/log.hpp"

namespace vane::http_server_detail {

struct server_state {
  http_server_options options;
  http_handler handler;
};

// 1MiB, 64KiB or 1000 bytes: how a body limit reads in a 413.
std::string size_text(std::uint64_t n);
std::string what_of(const std::exception_ptr& e);

// The three operations of a connection on its stream, defined in
// common/http_server_ops.hpp. Over TLS each is compiled in a unit of its
// own (common/https_server_*.cpp): Beast's templates through an SSL stream
// made one unit take 2.6 GiB and two and a half minutes under ASan+UBSan
// (now at most 1.8 GiB and 78 s).

// Reads one request into `parser`.
template <class Stream>
boost::asio::awaitable<boost::system::error_code> read_request(
    Stream& stream, boost::beast::flat_buffer& buffer,
    boost::beast::http::request_parser<boost::beast::http::string_body>& parser);

// Writes a whole reply.
template <class Stream>
boost::asio::awaitable<boost::system::error_code> write_reply(
    Stream& stream, boost::beast::http::response<boost::beast::http::string_body>& reply);

// Sends a reply whose body is a stream (http_body_stream): the head, each
// piece as a chunk, the last chunk. False when a write failed or the producer
// threw (logged); the caller closes the connection either way.
template <class Stream>
boost::asio::awaitable<bool> write_streamed(const server_state& state, Stream& stream,
                                            boost::beast::http::response<boost::beast::http::empty_body>& head,
                                            const http_body_stream& body);

// Requests on one connection until it closes, fails, times out or is not kept
// alive. `closed` tells the stream's own ways of ending a connection (TLS's
// truncation) from a request that does not parse.
template <class Stream>
boost::asio::awaitable<void> serve_requests(const server_state& state, Stream& stream,
                                            bool (*closed)(const boost::system::error_code&) = nullptr) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  const http_server_options& o = state.options;
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(o.header_limit));
    parser.body_limit(o.body_limit);
    beast::get_lowest_layer(stream).expires_after(o.timeout);
    const boost::system::error_code ec = co_await read_request(stream, buffer, parser);
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || (ec && closed && closed(ec)))
      co_return;
    http_server_reply reply;
    bool keep_alive = false;
    if (ec == http::error::body_limit) {
      reply = http_error_reply(413, "request body over " + size_text(o.body_limit));
    } else if (ec) {
      reply = http_error_reply(400, "bad request: " + ec.message());
    } else {
      const auto& req = parser.get();
      keep_alive = o.keep_alive && req.keep_alive();
      http_server_request request{req.method_string(), req.target(), req[http::field::authorization], req.body(),
                                  req[http::field::content_type]};
      std::exception_ptr failure;
      try {
        reply = co_await state.handler(request);
      } catch (...) {
        failure = std::current_exception();
      }
      if (failure) {
        log::error("{}: {} {} ended by an exception: {}", o.log_name, std::string(request.method),
                   std::string(request.target), what_of(failure));
        reply = http_error_reply(500, "internal error");
        keep_alive = false;
      }
    }
    if (reply.stream) {
      http::response<http::empty_body> head{static_cast<http::status>(reply.status), 11};
      head.set(http::field::server, o.server);
      for (const auto& [name, value] : reply.headers) head.set(name, value);
      head.set(http::field::content_type, reply.content_type);
      head.keep_alive(false);
      co_await write_streamed(state, stream, head, reply.stream);
      boost::system::error_code ignored;
      beast::get_lowest_layer(stream).socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
      co_return;
    }
    http::response<http::string_body> res{static_cast<http::status>(reply.status), 11};
    res.set(http::field::server, o.server);
    for (const auto& [name, value] : reply.headers) res.set(name, value);
    res.set(http::field::content_type, reply.content_type);
    res.body() = std::move(reply.body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(o.timeout);
    const boost::system::error_code wec = co_await write_reply(stream, res);
    if (wec || !keep_alive) {
      boost::system::error_code ignored;
      beast::get_lowest_layer(stream).socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
      co_return;
    }
  }
}

// Accepts connections until the acceptor is closed or cancelled (another
// accept error skips that connection), each served by `session(state,
// socket)` on the acceptor's executor.
template <class Session>
boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor,
                                         std::shared_ptr<const server_state> state, Session session) {
  namespace asio = boost::asio;
  constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), session(state, std::move(socket)), [state](std::exception_ptr e) {
      if (e) log::error("{}: a connection ended by an exception: {}", state->options.log_name, what_of(e));
    });
  }
}

}  // namespace vane::http_server_detail
