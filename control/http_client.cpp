#include "control/http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace vane::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

asio::awaitable<http_result> http_call(asio::any_io_executor ex, const http_url& url, std::string method,
                                       std::string target, std::string body, duration timeout,
                                       std::vector<std::pair<std::string, std::string>> headers) {
  http_result out;
  tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(url.host, url.port, nothrow);
  if (rec) {
    out.error = "cannot resolve " + url.host + ": " + rec.message();
    co_return out;
  }
  beast::tcp_stream stream(ex);
  stream.expires_after(timeout);
  auto [cec, ep] = co_await stream.async_connect(results, nothrow);
  if (cec) {
    out.error = "cannot connect to " + url.host + ":" + url.port + ": " + cec.message();
    co_return out;
  }
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, url.host + ":" + url.port);
  req.set(http::field::user_agent, "vane-control");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  req.keep_alive(false);
  req.prepare_payload();
  auto [wec, wn] = co_await http::async_write(stream, req, nothrow);
  if (wec) {
    out.error = "write to " + url.host + ":" + url.port + " failed: " + wec.message();
    co_return out;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::uint64_t{64} * 1024 * 1024);
  auto [hec, hn] = co_await http::async_read(stream, buffer, parser, nothrow);
  if (hec) {
    out.error = (hec == beast::error::timeout ? "timeout from " : "no answer from ") + url.host + ":" + url.port +
                (hec == beast::error::timeout ? "" : ": " + hec.message());
    co_return out;
  }
  out.status = static_cast<int>(parser.get().result_int());
  out.body = std::move(parser.get().body());
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  co_return out;
}

}  // namespace vane::control
