#include "common/https_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <optional>

#include "common/http_client_exchange.hpp"

namespace vane {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

// Connects to `endpoint` and handshakes, under request.timeout; nullopt with out.error set when that fails.
asio::awaitable<std::optional<beast::ssl_stream<beast::tcp_stream>>> open_tls(
    asio::any_io_executor ex, tcp::endpoint endpoint, asio::ssl::context& context, const tls_prepare& prepare,
    const http_request_spec& request, const std::string& label, http_result& out) {
  beast::tcp_stream tcp_stream(ex);
  tcp_stream.expires_after(request.timeout);  // for the handshake and the exchange too
  bool connected = co_await http_client_detail::connect(tcp_stream, endpoint, label, out);
  if (!connected) co_return std::nullopt;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream(std::in_place, std::move(tcp_stream), context);
  if (prepare) prepare(stream->native_handle());
  auto [hec] = co_await stream->async_handshake(asio::ssl::stream_base::client, nothrow);
  if (hec) {
    out.error = "TLS handshake with " + label + " failed: " + hec.message();
    co_return std::nullopt;
  }
  co_return stream;
}

}  // namespace

asio::awaitable<http_result> https_fetch(asio::any_io_executor ex, tcp::endpoint endpoint, asio::ssl::context& context,
                                         tls_prepare prepare, http_request_spec request) {
  const std::string label = address_text(endpoint);
  http_result out;
  auto stream = co_await open_tls(ex, endpoint, context, prepare, request, label, out);
  if (!stream) co_return out;
  auto req = http_client_detail::make_request(request, label);
  co_await http_client_detail::exchange(*stream, label, req, request.body_limit, out);
  boost::system::error_code ignored;
  beast::get_lowest_layer(*stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
  co_return out;
}

asio::awaitable<http_result> https_stream(asio::any_io_executor ex, tcp::endpoint endpoint, asio::ssl::context& context,
                                          tls_prepare prepare, http_request_spec request, duration idle_timeout,
                                          http_body_sink on_data) {
  namespace http = beast::http;
  const std::string label = address_text(endpoint);
  http_result out;
  auto stream = co_await open_tls(ex, endpoint, context, prepare, request, label, out);
  if (!stream) co_return out;
  auto req = http_client_detail::make_request(request, label);
  auto [wec, wn] = co_await http::async_write(*stream, req, nothrow);
  if (wec) {
    out.error = "write to " + label + " failed: " + wec.message();
    co_return out;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);  // a watch has no end in sight; a refusal's body is capped below
  auto [hec, hn] = co_await http::async_read_header(*stream, buffer, parser, nothrow);
  if (hec) {
    out.error =
        hec == beast::error::timeout ? "timeout from " + label : "no answer from " + label + ": " + hec.message();
    co_return out;
  }
  out.status = static_cast<int>(parser.get().result_int());
  const bool streamed = out.status / 100 == 2;
  // Beast's incremental read: read_some parses what has come (read would wait to fill `piece`), and
  // stops with need_buffer when `piece` is full.
  char piece[16 * 1024];
  while (!parser.is_done()) {
    parser.get().body().data = piece;
    parser.get().body().size = sizeof piece;
    beast::get_lowest_layer(*stream).expires_after(streamed ? idle_timeout : request.timeout);
    auto [rec, rn] = co_await http::async_read_some(*stream, buffer, parser, nothrow);
    if (rec && rec != http::error::need_buffer) {
      out.error = rec == beast::error::timeout ? "timeout from " + label
                                               : "answer from " + label + " cut short: " + rec.message();
      break;
    }
    const std::string_view got(piece, sizeof piece - parser.get().body().size);
    if (!streamed) {
      if (out.body.size() + got.size() > request.body_limit) {
        out.error = "answer from " + label + " over its limit";
        break;
      }
      out.body.append(got);
    } else if (!got.empty() && !on_data(got)) {
      break;
    }
  }
  boost::system::error_code ignored;
  beast::get_lowest_layer(*stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
  co_return out;
}

}  // namespace vane
