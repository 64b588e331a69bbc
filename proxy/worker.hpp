#pragma once
// One worker = one thread running one io_context, its own SO_REUSEPORT
// acceptors, its connections and its upstream pools. Nothing here is written
// by another thread while the worker runs: the control thread hands over new
// route tables, acceptors and drain orders with asio::post onto the worker's
// own context (see server::on_each_worker).
#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "proxy/access_log.hpp"
#include "proxy/http1/head_out.hpp"
#include "proxy/http1/message.hpp"
#include "proxy/route_table.hpp"
#include "proxy/stats.hpp"
#include "proxy/stream_state.hpp"
#include "proxy/upstream_pool.hpp"

namespace vane::proxy {

// What a worker reads on the request path: the shared immutable table, this
// worker's pick state for it, and its upstream pools for the table's
// clusters. A request holds the shared_ptr it started with (so its table and
// pools outlive a swap); the reference count is touched by this worker only.
struct worker_policy {
  std::shared_ptr<const route_table> table;
  std::vector<std::vector<std::int64_t>> swrr;        // smooth round-robin state per route index
  std::vector<std::shared_ptr<upstream_pool>> pools;  // per cluster index of `table`
  // This worker's stats: per route index, per split position; per cluster index; for unrouted requests.
  std::vector<std::vector<route_cluster_stats*>> route_stats;
  std::vector<cluster_stats*> cluster_counters;
  route_cluster_stats* unrouted = nullptr;
  // Requests seen by each fault, for exact shares: [route index] and [cluster index], abort then delay.
  std::vector<std::array<std::uint64_t, 2>> route_fault_counts;
  std::vector<std::array<std::uint64_t, 2>> cluster_fault_counts;
  // Mirror copies: their own pools (per cluster index; only for mirror
  // targets), so that copies never take a connection a request needs; and
  // requests seen by each route's mirror, for exact shares.
  std::vector<std::shared_ptr<upstream_pool>> mirror_pools;
  std::vector<std::uint64_t> mirror_counts;
  std::vector<metrics::counter*> fallback_counts;  // per route index: vane_fallbacks_total (null: no fallback)
};

// What one request being served needs beyond its connection: the received
// heads (bytes and views), the body pieces, the heads written. Taken from the
// worker when a request starts and given back when it ends, so that an idle
// keep-alive connection holds none of it and a busy worker reuses the same
// few (no allocation per request once they have grown).
struct request_scratch {
  std::string request_store, response_store;
  message_head request, response;
  std::vector<std::string_view> request_pieces, response_pieces;
  std::string upstream_head;  // the request head sent upstream
  std::string out_head;       // the response head (or local reply) sent to the client
  forwarded_fields forwarded;
  stream_state stream;  // the request's stream (proxy/stream_state.hpp)
};

struct pool_stats {
  std::string cluster;
  std::size_t active = 0;
  std::size_t idle = 0;
  std::uint64_t created = 0;
};

// A listening socket bound on the control thread, not yet in any event loop:
// a socket in a running worker's loop may be touched by that worker's thread
// only (its per-socket locks are off), so it joins the loop on that thread
// (worker::add_listener). Closed on destruction when it never got there.
class listening_socket {
 public:
  listening_socket(int fd, boost::asio::ip::tcp protocol) : fd_(fd), protocol_(protocol) {}
  listening_socket(listening_socket&& o) noexcept : fd_(std::exchange(o.fd_, -1)), protocol_(o.protocol_) {}
  listening_socket& operator=(listening_socket&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = std::exchange(o.fd_, -1);
      protocol_ = o.protocol_;
    }
    return *this;
  }
  listening_socket(const listening_socket&) = delete;
  listening_socket& operator=(const listening_socket&) = delete;
  ~listening_socket() { close(); }
  int fd() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  boost::asio::ip::tcp protocol() const { return protocol_; }

 private:
  void close();
  int fd_;
  boost::asio::ip::tcp protocol_;
};

class worker {
 public:
  worker(std::size_t id, std::shared_ptr<const route_table> table, stats_store& stats);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  boost::asio::io_context& context() { return ioc_; }
  std::size_t id() const { return id_; }

  void start();  // runs the worker's thread
  void stop();   // stops serving now, joins the thread

  // --- on the worker's own thread only (posted by the control thread) ---
  // Starts accepting for the named listener: the socket joins this worker's
  // event loop here (closed instead once the drain closed the listeners).
  void add_listener(const std::string& name, std::uint64_t id, listening_socket socket);
  void close_listener(std::uint64_t id);
  void close_all_listeners();
  // Swaps in a new table; pools of clusters whose settings did not change are kept.
  void install(std::shared_ptr<const route_table> table);
  void set_draining() { draining_ = true; }
  // Closes connections that wait for their next request (used at the end of a drain).
  void close_idle_connections();
  std::vector<pool_stats> stats() const;

  // --- on the request path (worker thread) ---
  // Requests being proxied now (limits.max_in_flight), counted by their streams.
  std::uint32_t in_flight() const { return in_flight_; }
  void begin_in_flight() { ++in_flight_; }
  void end_in_flight() { --in_flight_; }
  const std::shared_ptr<worker_policy>& policy() const { return policy_; }
  stats_store& stats_registry() { return stats_; }
  access_ring* access_log() const { return access_log_; }
  void set_access_log(access_ring* ring) { access_log_ = ring; }  // before start()
  bool draining() const { return draining_; }
  // A connection's entry in the worker's list; `idle` while it waits for a request.
  struct connection_entry {
    worker_socket* stream = nullptr;
    bool idle = true;
  };
  std::list<connection_entry>::iterator register_connection(worker_socket& s);
  void unregister_connection(std::list<connection_entry>::iterator it);

  // A connection's place in the worker's list (and in its listener's
  // connections_active, counted by the accept loop) for the connection's life.
  struct registration {
    worker& w;
    std::list<connection_entry>::iterator it;
    listener_stats* stats;
    registration(worker& wk, worker_socket& s, listener_stats* st) : w(wk), it(wk.register_connection(s)), stats(st) {}
    registration(const registration&) = delete;
    registration& operator=(const registration&) = delete;
    ~registration() {
      w.unregister_connection(it);
      if (stats) stats->connections_active.add(-1);
    }
  };
  // A request's scratch, taken for the request's life.
  struct scratch_lease {
    worker& w;
    std::unique_ptr<request_scratch> s;
    explicit scratch_lease(worker& wk) : w(wk), s(wk.take_scratch()) {}
    scratch_lease(const scratch_lease&) = delete;
    scratch_lease& operator=(const scratch_lease&) = delete;
    ~scratch_lease() { w.give_back(std::move(s)); }
  };

  // Scratch for a request starting; give_back() when it ends.
  std::unique_ptr<request_scratch> take_scratch() {
    if (scratch_.empty()) return std::make_unique<request_scratch>();
    auto s = std::move(scratch_.back());
    scratch_.pop_back();
    return s;
  }
  void give_back(std::unique_ptr<request_scratch> s) {
    if (s && scratch_.size() < max_free_scratch) scratch_.push_back(std::move(s));
  }

  // Connections currently open on this worker (read by the control thread to finish a drain).
  std::uint64_t active_connections() const { return active_connections_.load(std::memory_order_relaxed); }

 private:
  struct listener_slot {
    std::string name;
    std::uint64_t id;
    std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor;
    listener_stats* stats;
  };
  std::size_t id_;
  stats_store& stats_;
  // Before ioc_, so they outlive it: destroying the io_context destroys the
  // coroutines of the connections still open (a drain that timed out), which
  // give their scratch back, unregister and end their in-flight count.
  static constexpr std::size_t max_free_scratch = 256;  // kept after a burst; more are freed
  std::vector<std::unique_ptr<request_scratch>> scratch_;
  std::uint32_t in_flight_ = 0;  // requests being proxied (this worker's thread only)
  std::list<connection_entry> connections_;
  bool draining_ = false;
  bool listeners_closed_ = false;  // by the drain: no listener is added after it
  access_ring* access_log_ = nullptr;
  std::atomic<std::uint64_t> active_connections_{0};
  // One thread runs it, and only that thread touches its sockets (other threads
  // post to it), so the per-socket locks of the reactor are off; posting and
  // registration stay locked.
  boost::asio::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::shared_ptr<worker_policy> policy_;
  std::list<listener_slot> listeners_;
  std::thread thread_;
};

}  // namespace vane::proxy
