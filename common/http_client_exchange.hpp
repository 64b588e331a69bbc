#pragma once
// Internal to common/http_client.cpp and common/https_client.cpp: the parts
// of one client call both share. Not for other files: it brings Beast's
// templates with it, and the point of those two files is to keep them there.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <string>

#include "common/http_client.hpp"

namespace vane::http_client_detail {

// The request as sent: Host, User-Agent, the spec's fields, Content-Type
// when there is a body, Connection: close, Content-Length when it has one.
boost::beast::http::request<boost::beast::http::string_body> make_request(http_request_spec& spec,
                                                                          const std::string& label);

// Connects `stream` to `endpoint` under the spec's timeout (which stays set
// for what follows); false with out.error set when it cannot.
boost::asio::awaitable<bool> connect(boost::beast::tcp_stream& stream, boost::asio::ip::tcp::endpoint endpoint,
                                     const std::string& label, http_result& out);

// Writes the request and reads the answer (status and body, or error).
template <class Stream>
boost::asio::awaitable<void> exchange(Stream& stream, const std::string& label,
                                      boost::beast::http::request<boost::beast::http::string_body>& req,
                                      std::uint64_t body_limit, http_result& out) {
  namespace http = boost::beast::http;
  constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);
  auto [wec, wn] = co_await http::async_write(stream, req, nothrow);
  if (wec) {
    out.error = "write to " + label + " failed: " + wec.message();
    co_return;
  }
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(body_limit);
  auto [rec, rn] = co_await http::async_read(stream, buffer, parser, nothrow);
  if (rec) {
    out.error = rec == boost::beast::error::timeout ? "timeout from " + label
                                                    : "no answer from " + label + ": " + rec.message();
    co_return;
  }
  out.status = static_cast<int>(parser.get().result_int());
  out.body = std::move(parser.get().body());
}

}  // namespace vane::http_client_detail
