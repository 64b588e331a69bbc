#include "common/https_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "common/http_client_exchange.hpp"

namespace vane {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

asio::awaitable<http_result> https_fetch(asio::any_io_executor ex, tcp::endpoint endpoint, asio::ssl::context& context,
                                         tls_prepare prepare, http_request_spec request) {
  const std::string label = address_text(endpoint);
  beast::tcp_stream tcp_stream(ex);
  tcp_stream.expires_after(request.timeout);  // for the handshake and the exchange too
  http_result out;
  bool connected = co_await http_client_detail::connect(tcp_stream, endpoint, label, out);
  if (!connected) co_return out;
  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), context);
  if (prepare) prepare(stream.native_handle());
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, nothrow);
  if (hec) {
    out.error = "TLS handshake with " + label + " failed: " + hec.message();
    co_return out;
  }
  auto req = http_client_detail::make_request(request, label);
  co_await http_client_detail::exchange(stream, label, req, request.body_limit, out);
  boost::system::error_code ignored;
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
  co_return out;
}

}  // namespace vane
