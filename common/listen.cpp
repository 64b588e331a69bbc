#include "common/listen.hpp"

#include <sys/socket.h>

#include <boost/asio/socket_base.hpp>

namespace vane {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

tcp::acceptor listen_on(const asio::any_io_executor& ex, const tcp::endpoint& endpoint, bool reuse_port,
                        boost::system::error_code& ec) {
  using reuse_port_option = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
  tcp::acceptor acceptor(ex);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && reuse_port) acceptor.set_option(reuse_port_option(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
  }
  return acceptor;
}

}  // namespace vane
