#pragma once
// A per-worker pool of keep-alive connections to one cluster's endpoints.
//
// Each acquire picks the cluster's next endpoint (round-robin), then reuses
// an idle connection to it or opens one, as nginx and Envoy balance per request.
// Single-threaded by construction: a pool belongs to one worker and is only
// touched from that worker's io_context, so it takes no lock. Contract:
//   lease l = co_await pool.acquire(deadline);   // a connection, or an error
//   ... use l.conn ...
//   pool.release(std::move(l.conn), reusable);  // exactly once per successful acquire
// `max_connections` caps connections (leased + idle + connecting) of this
// worker; beyond it up to `max_pending` requests wait in FIFO order for a
// released connection until their deadline; beyond that acquire fails with
// `overflow` at once.
#include <algorithm>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "common/metrics.hpp"
#include "proxy/route_table.hpp"
#include "proxy/stream.hpp"

namespace vane::proxy {

struct upstream_connection {
  explicit upstream_connection(const worker_executor& ex) : stream(ex) {}
  proxy_stream stream;               // TLS when the cluster has tls (the handshake is done by the pool)
  boost::beast::flat_buffer buffer;  // read buffer; must be empty when the connection is reused
  std::size_t endpoint = 0;
  std::chrono::steady_clock::time_point idle_since{};
};
using upstream_ptr = std::unique_ptr<upstream_connection>;

// Whether the upstream sent something on a connection in use that was not read yet (a non-blocking
// peek): after a failed write, an answer that came before the request's end.
bool answer_waiting(upstream_connection& c);

enum class acquire_error { none, overflow, connect_failed, connect_timeout, pending_timeout, no_healthy, tls_failed };

class h2_upstream;  // proxy/http2/client.hpp

struct lease {
  upstream_ptr conn;
  bool reused = false;  // taken from the idle list (may have been closed by the peer meanwhile)
  acquire_error error = acquire_error::none;
};

class upstream_pool {
 public:
  upstream_pool(const worker_executor& ex, const cluster_target& cluster, duration idle_timeout);
  ~upstream_pool();
  upstream_pool(const upstream_pool&) = delete;
  upstream_pool& operator=(const upstream_pool&) = delete;

  // `fresh_only` skips idle connections (used to retry after a stale one failed).
  // An idle connection is handed out after a liveness peek (upstream_pool.cpp).
  task<lease> acquire(std::chrono::steady_clock::time_point deadline, bool fresh_only = false);
  // acquire() in two halves, so that the common case needs no coroutine:
  // try_acquire() picks the endpoint and answers at once with an idle
  // connection or no_healthy, else nothing; then acquire_new(endpoint, ...)
  // opens a connection or waits for one.
  std::optional<lease> try_acquire(std::size_t& endpoint, bool fresh_only);
  task<lease> acquire_new(std::size_t endpoint, std::chrono::steady_clock::time_point deadline);
  // Returns a connection; `reusable` only when its last response was read to the end with keep-alive.
  void release(upstream_ptr conn, bool reusable);
  // New health of the endpoints (same order as the cluster's); on the worker's thread.
  void set_health(std::shared_ptr<const std::vector<char>> healthy) { cluster_.healthy = std::move(healthy); }

  // Retry budget (as Envoy's): retries in flight may be at most `per_10k`
  // hundredths of a percent of the requests in flight to this cluster on this
  // worker, or `min`, whichever is larger; so retries cannot multiply an outage.
  void begin_request() { ++active_requests_; }
  void end_request() { --active_requests_; }
  bool try_begin_retry(std::uint32_t per_10k, std::uint32_t min) {
    std::uint64_t allowed = std::max<std::uint64_t>(min, std::uint64_t{active_requests_} * per_10k / 10000);
    if (active_retries_ >= allowed) return false;
    ++active_retries_;
    return true;
  }
  void end_retry() { --active_retries_; }
  std::uint32_t active_requests() const { return active_requests_; }
  std::uint32_t max_connections() const { return cluster_.max_connections; }

  // The cluster's next healthy endpoint in round-robin order, or endpoints.size() when none is.
  std::size_t pick_endpoint() { return next_healthy(); }
  const cluster_target& cluster() const { return cluster_; }
  const worker_executor& executor() const { return ex_; }
  duration idle_timeout() const { return idle_timeout_; }
  // The HTTP/2 connections (a cluster with protocol h2), made on first use.
  h2_upstream& h2();

  // Where each failed connect (refused, timed out, or a failed TLS handshake) is counted, per endpoint
  // tried: vane_upstream_connect_errors_total (the worker's counter of the cluster).
  void count_connect_errors_in(metrics::counter* c) { connect_errors_ = c; }

  std::size_t active() const { return open_ - idle_count_; }
  std::size_t idle() const { return idle_count_; }
  std::uint64_t connections_created() const { return created_; }

 private:
  struct waiter;
  task<lease> connect(std::size_t first_endpoint, std::chrono::steady_clock::time_point deadline);
  upstream_ptr take_idle(std::size_t endpoint);
  void release_slot();
  // The next healthy endpoint in round-robin order, or endpoints.size() when none is.
  std::size_t next_healthy();
  bool healthy(std::size_t endpoint) const { return !cluster_.healthy || (*cluster_.healthy)[endpoint]; }

  worker_executor ex_;
  cluster_target cluster_;
  duration idle_timeout_;
  std::vector<std::vector<upstream_ptr>> idle_;  // per endpoint, most recently used last
  std::size_t idle_count_ = 0;
  std::deque<waiter*> waiters_;
  std::size_t open_ = 0;  // idle + leased + connecting
  std::uint32_t active_requests_ = 0;
  std::uint32_t active_retries_ = 0;
  std::size_t next_endpoint_ = 0;
  std::uint64_t created_ = 0;
  metrics::counter* connect_errors_ = nullptr;
  std::unique_ptr<h2_upstream> h2_;  // (last: its connections go first)
};

}  // namespace vane::proxy
