#include "proxy/server.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "common/log.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

server::server(std::shared_ptr<const route_table> table, std::size_t workers) : table_(std::move(table)) {
  for (std::size_t i = 0; i < workers; ++i) workers_.push_back(std::make_unique<worker>(i, table_));
}

void server::bind() {
  for (std::size_t li = 0; li < table_->listeners.size(); ++li) {
    const auto& l = table_->listeners[li];
    boost::system::error_code ec;
    auto address = asio::ip::make_address(l.address.host, ec);
    if (ec) throw std::runtime_error(fmt::format("listener {}: '{}' is not an IP address", l.name, l.address.host));
    tcp::endpoint endpoint(address, l.address.port);
    // With port 0 the first socket gets a port from the OS and the other
    // workers bind that same port, so all of them share one accept queue set.
    for (auto& w : workers_) {
      tcp::acceptor acceptor(w->context());
      acceptor.open(endpoint.protocol(), ec);
      if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) acceptor.set_option(reuse_port(true), ec);
      if (!ec) acceptor.bind(endpoint, ec);
      if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
      if (ec)
        throw std::runtime_error(
            fmt::format("listener {}: cannot listen on {}: {}", l.name, l.address.to_string(), ec.message()));
      endpoint = acceptor.local_endpoint();
      w->add_acceptor(li, std::move(acceptor));
    }
    host_port bound{endpoint.address().to_string(), endpoint.port()};
    bound_.push_back(bound.to_string());
  }
}

void server::start() {
  for (auto& w : workers_) w->start();
  for (std::size_t li = 0; li < bound_.size(); ++li)
    log::info("listener {} listening on {} ({} workers)", table_->listeners[li].name, bound_[li], workers_.size());
}

void server::stop() {
  for (auto& w : workers_) w->stop();
}

}  // namespace vane::proxy
