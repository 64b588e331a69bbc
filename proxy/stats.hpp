#pragma once
// The proxy's own metrics (DESIGN.md "Metrics"): per worker, per label set.
//
// Each worker gets its own stats objects when it installs a route table and
// keeps raw pointers to them in its policy; on the request path it writes
// them with single-writer relaxed atomics (common/metrics.hpp): no lock, no
// shared write. The store's mutex is taken only to register a label set (at
// install, per route and cluster, not per request) and by the scrape, which
// merges the workers' values. Stats outlive the tables that named them, so a
// counter never goes back when a reload renumbers or drops a route.
#include <array>
#include <boost/json/object.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/metrics.hpp"

namespace vane::proxy {

// One worker's view of one (route, cluster) pair.
struct route_cluster_stats {
  metrics::lazy<metrics::status_counters> requests;  // downstream requests, by the status sent
  metrics::lazy<metrics::concurrent_histogram> request_time;
  metrics::lazy<metrics::status_counters> upstream;  // every upstream attempt
  metrics::lazy<metrics::concurrent_histogram> upstream_time;
  metrics::lazy<metrics::status_counters> mirror;
  metrics::lazy<metrics::concurrent_histogram> mirror_time;
  metrics::counter mirror_shed_overload;
  metrics::counter mirror_shed_body;
  metrics::counter retries;
  metrics::counter guard_trips;  // the route's guard of this cluster tripped (by this worker)
  // gRPC requests: the status the client got, and each upstream attempt's;
  // `upstream_grpc_answered` only the attempts answered with a non-5xx HTTP
  // status (a 5xx is counted as an error already: /stats/latency adds these).
  metrics::lazy<metrics::grpc_status_counters> grpc;
  metrics::lazy<metrics::grpc_status_counters> upstream_grpc;
  metrics::lazy<metrics::grpc_status_counters> upstream_grpc_answered;
};

struct cluster_stats {
  metrics::counter connect_errors;
};

// Why an HTTP/2 connection was ended by vane (vane_http2_protocol_errors_total's reason).
enum class h2_error_reason : std::uint8_t {
  protocol_error,       // a frame or sequence RFC 9113 forbids (nghttp2 said GOAWAY)
  rapid_reset,          // most streams reset (by either side) within a second of opening
  flood,                // SETTINGS/PING acknowledgements or queued frames past nghttp2's limits
  empty_frames,         // DATA frames with no payload and no END_STREAM, one after another
  window_update_flood,  // WINDOW_UPDATE frames far beyond what the DATA sent needs
  continuation_flood,   // a header block in too many CONTINUATION frames
  header_list,          // a header list past limits.h2.max_header_list (the stream is reset)
  count
};
inline constexpr const char* h2_error_names[] = {"protocol_error",       "rapid_reset",         "flood",
                                                 "empty_frames",         "window_update_flood", "continuation_flood",
                                                 "header_list_too_large"};

struct listener_stats {
  metrics::gauge connections_active;
  metrics::gauge streams_active;  // HTTP/2 streams being served
  metrics::counter h2_errors[static_cast<std::size_t>(h2_error_reason::count)];
  metrics::counter connections_refused;   // closed at accept: limits.max_connections reached
  metrics::counter tls_handshake_errors;  // TLS listeners: handshakes that failed or timed out
};

// The route and cluster labels of requests that matched no route (404) or
// were refused before routing (400, 413, 431).
inline constexpr std::string_view unrouted_label = "none";

class stats_store {
 public:
  explicit stats_store(std::size_t workers) : workers_(workers) {}
  stats_store(const stats_store&) = delete;
  stats_store& operator=(const stats_store&) = delete;

  // Registration: the stats of `worker` for a label set, created on first
  // call; the pointer stays valid for the store's life.
  route_cluster_stats* route_cluster(std::size_t worker, std::string_view route, std::string_view cluster);
  cluster_stats* cluster(std::size_t worker, std::string_view name);
  listener_stats* listener(std::size_t worker, std::string_view name);
  // Fallbacks of `route` from one cluster to another (vane_fallbacks_total).
  metrics::counter* fallbacks(std::size_t worker, std::string_view route, std::string_view from, std::string_view to);

  // Scrape: the families the store holds, merged over the workers, appended
  // in Prometheus text format.
  void render_prometheus(std::string& out) const;
  // /stats/latency's "routes": per route and cluster, the sparse fine
  // histograms (µs) and status counts of downstream requests, upstream
  // attempts and mirror attempts.
  boost::json::array latency_json() const;
  // Sum over the workers (tests, /stats/latency).
  std::uint64_t connections_active(std::string_view listener) const;

 private:
  template <typename T>
  using per_worker = std::vector<std::unique_ptr<T>>;
  template <typename T>
  T* get(per_worker<T>& slots, std::size_t worker);

  std::size_t workers_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, per_worker<route_cluster_stats>> route_clusters_;
  std::map<std::string, per_worker<cluster_stats>, std::less<>> clusters_;
  std::map<std::string, per_worker<listener_stats>, std::less<>> listeners_;
  std::map<std::array<std::string, 3>, per_worker<metrics::counter>> fallbacks_;
};

// Process metrics from /proc/self: start time, CPU, resident memory, open fds.
void render_process_metrics(std::string& out, double start_time_seconds);

}  // namespace vane::proxy
