#pragma once
// Opening a listening TCP socket the way every vane server does: SO_REUSEADDR,
// optionally SO_REUSEPORT (one socket per worker on the same port), the
// largest backlog. On failure `ec` says which step failed and nothing listens.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace vane {

boost::asio::ip::tcp::acceptor listen_on(const boost::asio::any_io_executor& ex,
                                         const boost::asio::ip::tcp::endpoint& endpoint, bool reuse_port,
                                         boost::system::error_code& ec);

}  // namespace vane
