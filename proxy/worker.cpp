#include "proxy/worker.hpp"

#include <unistd.h>

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
asio::awaitable<void> accept_loop(worker& w, std::shared_ptr<tcp::acceptor> acceptor, std::string listener,
                                  listener_stats* stats) {
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(
        w.context(), asio::as_tuple(asio::use_awaitable));  // a socket on the worker's executor type
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
      // EMFILE and friends: log and go on; the connection stays in the backlog.
      log::warn("worker {}: accept on {} failed: {}", w.id(), listener, ec.message());
      continue;
    }
    // Past the limit the connection is closed at once: those already open keep being served.
    if (stats &&
        stats->connections_active.value() >= static_cast<std::int64_t>(w.policy()->table->limits.max_connections)) {
      stats->connections_refused.add();
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    if (stats)
      stats->connections_active.add(
          1);  // here, not in the coroutine: the next accept sees it; serve_connection takes it back
    asio::co_spawn(w.context(), serve_connection(w, std::move(socket), listener, stats), asio::detached);
  }
}

bool same_cluster(const cluster_target& a, const cluster_target& b) {
  return a.name == b.name && a.protocol == b.protocol && a.endpoints == b.endpoints &&
         a.connect_timeout == b.connect_timeout && a.max_connections == b.max_connections &&
         a.max_pending == b.max_pending && a.tls == b.tls && a.tls_host == b.tls_host;
}
}  // namespace

worker::worker(std::size_t id, std::shared_ptr<const route_table> table, stats_store& stats) : id_(id), stats_(stats) {
  install(std::move(table));
}

worker::~worker() { stop(); }

void worker::install(std::shared_ptr<const route_table> table) {
  auto next = std::make_shared<worker_policy>();
  next->swrr.resize(table->route_count);
  for (const auto& l : table->listeners)
    for (const auto& r : l.routes) next->swrr[r.index].assign(r.decision.weights.size(), 0);
  for (const auto& c : table->clusters) {
    std::shared_ptr<upstream_pool> pool;
    if (policy_) {
      const auto& old = *policy_->table;
      for (std::size_t i = 0; i < old.clusters.size(); ++i)
        if (same_cluster(old.clusters[i], c) && old.limits.idle_timeout == table->limits.idle_timeout)
          pool = policy_->pools[i];
      if (pool) pool->set_health(c.healthy);
    }
    if (!pool) pool = std::make_shared<upstream_pool>(ioc_.get_executor(), c, table->limits.idle_timeout);
    next->pools.push_back(std::move(pool));
  }
  next->mirror_pools.resize(table->clusters.size());
  next->mirror_counts.resize(table->route_count);
  for (const auto& l : table->listeners) {
    for (const auto& r : l.routes) {
      if (!r.mirror) continue;
      std::size_t c = r.clusters[r.mirror->target];
      if (next->mirror_pools[c]) continue;
      const auto& target = table->clusters[c];
      if (policy_) {
        const auto& old = *policy_->table;
        for (std::size_t i = 0; i < old.clusters.size(); ++i)
          if (policy_->mirror_pools[i] && same_cluster(old.clusters[i], target))
            next->mirror_pools[c] = policy_->mirror_pools[i];
      }
      if (!next->mirror_pools[c])
        next->mirror_pools[c] =
            std::make_shared<upstream_pool>(ioc_.get_executor(), target, table->limits.idle_timeout);
      else
        next->mirror_pools[c]->set_health(target.healthy);
    }
  }
  next->route_stats.resize(table->route_count);
  next->route_fault_counts.resize(table->route_count);
  next->cluster_fault_counts.resize(table->clusters.size());
  for (const auto& l : table->listeners)
    for (const auto& r : l.routes)
      for (std::size_t c : r.clusters)
        next->route_stats[r.index].push_back(stats_.route_cluster(id_, r.name, table->clusters[c].name));
  for (const auto& c : table->clusters) next->cluster_counters.push_back(stats_.cluster(id_, c.name));
  for (std::size_t i = 0; i < next->pools.size(); ++i)
    next->pools[i]->count_connect_errors_in(&next->cluster_counters[i]->connect_errors);
  next->unrouted = stats_.route_cluster(id_, unrouted_label, unrouted_label);
  next->fallback_counts.resize(table->route_count);
  for (const auto& l : table->listeners) {
    for (const auto& r : l.routes) {
      if (r.fallback)
        next->fallback_counts[r.index] =
            stats_.fallbacks(id_, r.name, table->clusters[r.clusters[r.fallback->from]].name,
                             table->clusters[r.clusters[r.fallback->to]].name);
    }
  }
  next->table = std::move(table);
  policy_ = std::move(next);
}

void listening_socket::close() {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

void worker::add_listener(const std::string& name, std::uint64_t id, listening_socket socket) {
  if (listeners_closed_) return;  // (closed by `socket`: the drain closed this worker's listeners already)
  auto a = std::make_shared<tcp::acceptor>(ioc_);
  boost::system::error_code ec;
  a->assign(socket.protocol(), socket.fd(), ec);
  if (ec) {  // (closed by `socket`)
    log::error("listener {}: worker {} cannot take its socket: {}", name, id_, ec.message());
    return;
  }
  socket.release();  // the acceptor's now
  auto* stats = stats_.listener(id_, name);
  listeners_.push_back({name, id, a, stats});
  asio::co_spawn(ioc_, accept_loop(*this, a, name, stats), asio::detached);
}

void worker::close_listener(std::uint64_t id) {
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (it->id == id) {
      boost::system::error_code ec;
      it->acceptor->close(ec);
      it = listeners_.erase(it);
    } else {
      ++it;
    }
  }
}

void worker::close_all_listeners() {
  listeners_closed_ = true;
  for (auto& l : listeners_) {
    // Closing a listening socket resets the connections still in its accept
    // queue: take them first (they are served, with Connection: close).
    boost::system::error_code ec;
    l.acceptor->non_blocking(true, ec);
    for (;;) {
      worker_socket socket(ioc_);
      l.acceptor->accept(socket, ec);
      if (ec) break;
      if (l.stats) l.stats->connections_active.add(1);
      asio::co_spawn(ioc_, serve_connection(*this, std::move(socket), l.name, l.stats), asio::detached);
    }
    l.acceptor->close(ec);
  }
  listeners_.clear();
}

std::list<worker::connection_entry>::iterator worker::register_connection(worker_socket& s) {
  active_connections_.fetch_add(1, std::memory_order_relaxed);
  connections_.push_front({&s, true});
  return connections_.begin();
}

void worker::unregister_connection(std::list<connection_entry>::iterator it) {
  connections_.erase(it);
  active_connections_.fetch_sub(1, std::memory_order_relaxed);
}

void worker::close_idle_connections() {
  // Only cancel the pending read: a read that already completed (its
  // completion queued) is not affected and its request is served; a session
  // whose read was cancelled checks for bytes that arrived meanwhile before it
  // closes (see serve_connection).
  for (auto& c : connections_)
    if (c.idle) c.stream->cancel();
}

std::vector<pool_stats> worker::stats() const {
  std::vector<pool_stats> out;
  const auto& table = *policy_->table;
  for (std::size_t i = 0; i < table.clusters.size(); ++i) {
    const auto& p = *policy_->pools[i];
    out.push_back({table.clusters[i].name, p.active(), p.idle(), p.connections_created()});
  }
  return out;
}

void worker::start() {
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
