#pragma once
// A request's record: counted once when its handling ends, whatever way it
// ends, in the route and cluster's stats, and queued for the access log.
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "proxy/access_log.hpp"
#include "proxy/stats.hpp"

namespace vane::proxy {

// Counts one downstream request once, when its handling ends: by the status
// sent, or 499 when the client went away first; and its duration to the
// last byte sent. A request that never got a complete head (the client
// closed or was too slow) has no code and is not counted. With the access
// log on, it also queues the request's line: the views point into the
// request head and the route table, both alive until the meter ends
// (declare it after the parser and the head's scratch).
struct request_meter {
  using clock = std::chrono::steady_clock;
  route_cluster_stats* slot = nullptr;
  unsigned code = 0;
  clock::time_point start = clock::now();
  access_ring* log = nullptr;
  std::string_view route = unrouted_label, cluster = unrouted_label, method, path, request_id;
  const boost::asio::ip::tcp::endpoint* upstream = nullptr;
  std::uint64_t bytes_received = 0, bytes_sent = 0;
  unsigned version = 11;  // the client's HTTP version (10, 11, 20), for the access log
  int grpc_status = -1;   // a gRPC request's status as the client got it (vane_grpc_requests_total)

  explicit request_meter(access_ring* ring) : log(ring) {}
  request_meter(const request_meter&) = delete;
  request_meter& operator=(const request_meter&) = delete;
  ~request_meter();

 private:
  void queue_line(clock::duration elapsed) const;
};

// Counts one upstream attempt by the upstream's status, or the status the
// proxy made of its failure.
void count_attempt(route_cluster_stats& slot, unsigned code, std::chrono::steady_clock::time_point start);
// Counts one mirror copy's answer (vane_mirror_*) the same way.
void count_mirror(route_cluster_stats& slot, unsigned code, std::chrono::steady_clock::time_point start);

}  // namespace vane::proxy
