#include "demo/writes.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/write.hpp>
#include <string>
#include <vector>

#include "demo/pattern.hpp"

namespace vane::demo {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> write_response(beast::tcp_stream& stream, http::response<http::string_body>& res) {
  co_await http::async_write(stream, res, nothrow);
}

asio::awaitable<void> send_bytes(beast::tcp_stream& stream, std::uint64_t n, bool chunked, bool keep_alive,
                                 std::string_view version) {
  http::response<http::buffer_body> res{http::status::ok, 11};
  res.set(http::field::server, "vane-demo");
  res.set("x-version", version);
  res.set(http::field::content_type, "application/octet-stream");
  res.keep_alive(keep_alive);
  if (chunked)
    res.chunked(true);
  else
    res.content_length(n);
  http::response_serializer<http::buffer_body> sr(res);
  std::vector<char> buf(std::size_t{64} * 1024);
  std::uint64_t sent = 0;
  res.body().data = nullptr;
  res.body().more = true;
  auto [hec, hn] = co_await http::async_write_header(stream, sr, nothrow);
  if (hec) co_return;
  while (sent < n) {
    std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), n - sent));
    for (std::size_t i = 0; i < len; ++i) buf[i] = pattern_byte(sent + i);
    res.body().data = buf.data();
    res.body().size = len;
    res.body().more = true;
    auto [ec, w] = co_await http::async_write(stream, sr, nothrow);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return;
    sent += len;
  }
  res.body().data = nullptr;
  res.body().size = 0;
  res.body().more = false;
  co_await http::async_write(stream, sr, nothrow);
}

}  // namespace vane::demo
