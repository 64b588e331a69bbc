#include "proxy/worker.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.hpp"
#include "proxy/connection.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
asio::awaitable<void> accept_loop(worker& w, tcp::acceptor& acceptor, std::size_t listener_index) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      // EMFILE and friends: log and go on; the connection stays in the backlog.
      log::warn("worker {}: accept failed: {}", w.id(), ec.message());
      continue;
    }
    asio::co_spawn(w.context(), serve_connection(w, std::move(socket), listener_index), asio::detached);
  }
}
}  // namespace

worker::worker(std::size_t id, std::shared_ptr<const route_table> table) : id_(id) {
  policy_ = std::make_shared<worker_policy>();
  policy_->swrr.resize(table->route_count);
  for (const auto& l : table->listeners)
    for (const auto& r : l.routes) policy_->swrr[r.index].assign(r.weights.size(), 0);
  for (const auto& c : table->clusters)
    pools_.push_back(std::make_unique<upstream_pool>(ioc_.get_executor(), c, table->config.limits.idle_timeout));
  policy_->table = std::move(table);
}

worker::~worker() { stop(); }

void worker::add_acceptor(std::size_t listener_index, tcp::acceptor acceptor) {
  acceptors_.emplace_back(listener_index, std::move(acceptor));
}

void worker::start() {
  for (auto& [index, acceptor] : acceptors_)
    asio::co_spawn(ioc_, accept_loop(*this, acceptor, index), asio::detached);
  thread_ = std::thread([this] {
    try {
      ioc_.run();
    } catch (const std::exception& e) {
      log::error("worker {}: stopped by an unexpected error: {}", id_, e.what());
      std::abort();
    }
  });
}

void worker::stop() {
  ioc_.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace vane::proxy
