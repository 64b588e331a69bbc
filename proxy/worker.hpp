#pragma once
// One worker = one thread running one io_context, its own SO_REUSEPORT
// acceptors, its connections and its upstream pools. Nothing here is written
// by another thread while the worker runs; new route tables arrive by
// asio::post onto the worker's own context.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "proxy/route_table.hpp"
#include "proxy/upstream_pool.hpp"

namespace vane::proxy {

// What a worker reads on the request path: the shared immutable table plus this
// worker's own pick state for it. A request holds the shared_ptr it started
// with; its reference count is touched by this worker only.
struct worker_policy {
  std::shared_ptr<const route_table> table;
  std::vector<std::vector<std::int64_t>> swrr;  // smooth round-robin state per route index
};

class worker {
 public:
  worker(std::size_t id, std::shared_ptr<const route_table> table);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  boost::asio::io_context& context() { return ioc_; }
  std::size_t id() const { return id_; }

  // Before start(): hands the worker an acceptor (opened on context()) for listener `index`.
  void add_acceptor(std::size_t listener_index, boost::asio::ip::tcp::acceptor acceptor);
  void start();  // runs the worker's thread
  void stop();   // stops accepting and serving now, joins the thread

  const std::shared_ptr<worker_policy>& policy() const { return policy_; }
  upstream_pool& pool(std::size_t cluster_index) { return *pools_[cluster_index]; }

  // Connections currently open on this worker (read by other threads for stats).
  std::uint64_t active_connections() const { return active_connections_.load(std::memory_order_relaxed); }
  void connection_opened() { active_connections_.fetch_add(1, std::memory_order_relaxed); }
  void connection_closed() { active_connections_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  std::size_t id_;
  boost::asio::io_context ioc_{1};
  std::shared_ptr<worker_policy> policy_;
  std::vector<std::unique_ptr<upstream_pool>> pools_;
  std::vector<std::pair<std::size_t, boost::asio::ip::tcp::acceptor>> acceptors_;
  std::atomic<std::uint64_t> active_connections_{0};
  std::thread thread_;
};

}  // namespace vane::proxy
