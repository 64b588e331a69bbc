#include "common/http_server.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <exception>
#include <memory>

#include "common/http_server_ops.hpp"

namespace vane {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

http_server_reply http_error_reply(unsigned status, std::string_view message) {
  http_server_reply r;
  r.status = status;
  r.body = boost::json::serialize(boost::json::object{{"error", message}}) + "\n";
  return r;
}

namespace http_server_detail {

std::string size_text(std::uint64_t n) {
  if (n != 0 && n % (1 << 20) == 0) return std::to_string(n >> 20) + "MiB";
  if (n != 0 && n % (1 << 10) == 0) return std::to_string(n >> 10) + "KiB";
  return std::to_string(n) + " bytes";
}

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception of unknown type";
  }
}

}  // namespace http_server_detail

namespace {

asio::awaitable<void> session(std::shared_ptr<const http_server_detail::server_state> state, tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  co_await http_server_detail::serve_requests(*state, stream);
}

}  // namespace

asio::awaitable<void> serve_http(tcp::acceptor& acceptor, http_server_options options, http_handler handler) {
  auto state = std::make_shared<const http_server_detail::server_state>(
      http_server_detail::server_state{std::move(options), std::move(handler)});
  co_await http_server_detail::accept_loop(acceptor, state, session);
}

}  // namespace vane
