#include "common/http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "common/http_client_exchange.hpp"

namespace vane {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

std::string address_text(const tcp::endpoint& endpoint) {
  return host_port{endpoint.address().to_string(), endpoint.port()}.to_string();
}

namespace http_client_detail {

http::request<http::string_body> make_request(http_request_spec& spec, const std::string& label) {
  http::request<http::string_body> req;
  req.method_string(spec.method);  // (an unknown method is sent as given, not thrown at)
  req.target(spec.target);
  req.version(11);
  req.set(http::field::host, spec.host.empty() ? label : spec.host);
  req.set(http::field::user_agent, spec.user_agent);
  for (const auto& [k, v] : spec.headers) req.set(k, v);
  // (A Content-Type among the spec's fields stays: a patch names its own.)
  if (!spec.body.empty() && req.find(http::field::content_type) == req.end())
    req.set(http::field::content_type, "application/json");
  req.body() = std::move(spec.body);
  req.keep_alive(false);
  req.prepare_payload();
  return req;
}

asio::awaitable<bool> connect(beast::tcp_stream& stream, tcp::endpoint endpoint, const std::string& label,
                              http_result& out) {
  auto [cec] = co_await stream.async_connect(endpoint, nothrow);
  if (cec) out.error = "cannot connect to " + label + ": " + cec.message();
  co_return !cec;
}

}  // namespace http_client_detail

namespace {

// After the connection: the request, the answer, and a clean close.
asio::awaitable<http_result> call_on(beast::tcp_stream& stream, const std::string& label, http_request_spec& spec) {
  http_result out;
  auto req = http_client_detail::make_request(spec, label);
  co_await http_client_detail::exchange(stream, label, req, spec.body_limit, out);
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  co_return out;
}

}  // namespace

asio::awaitable<http_result> http_fetch(asio::any_io_executor ex, std::string host, std::string port,
                                        http_request_spec request) {
  const std::string label = host + ":" + port;
  tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(host, port, nothrow);
  if (rec) {
    http_result out;
    out.error = "cannot resolve " + host + ": " + rec.message();
    co_return out;
  }
  beast::tcp_stream stream(ex);
  stream.expires_after(request.timeout);
  auto [cec, ep] = co_await stream.async_connect(results, nothrow);
  if (cec) {
    http_result out;
    out.error = "cannot connect to " + label + ": " + cec.message();
    co_return out;
  }
  http_result out = co_await call_on(stream, label, request);
  co_return out;
}

asio::awaitable<http_result> http_fetch(asio::any_io_executor ex, tcp::endpoint endpoint, http_request_spec request) {
  const std::string label = address_text(endpoint);
  beast::tcp_stream stream(ex);
  stream.expires_after(request.timeout);
  http_result out;
  bool connected = co_await http_client_detail::connect(stream, endpoint, label, out);
  if (!connected) co_return out;
  out = co_await call_on(stream, label, request);
  co_return out;
}

asio::awaitable<http_result> http_call(asio::any_io_executor ex, const http_url& url, std::string method,
                                       std::string target, std::string body, duration timeout,
                                       std::vector<std::pair<std::string, std::string>> headers) {
  http_request_spec spec;
  spec.method = std::move(method);
  spec.target = std::move(target);
  spec.host = url.host + ":" + url.port;
  spec.user_agent = "vane-control";
  spec.headers = std::move(headers);
  spec.body = std::move(body);
  spec.timeout = timeout;
  return http_fetch(std::move(ex), url.host, url.port, std::move(spec));
}

}  // namespace vane
