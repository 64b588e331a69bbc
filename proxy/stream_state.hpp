#pragma once
// What a request's stream decided and holds while it runs (proxy/request_stream.cpp).
//
// It lives in the worker's request scratch, reused request after request,
// not in the stream's coroutine frame: Asio recycles frames of up to about
// 1 KiB only, and a frame holding all this would be allocated with
// memalign on every request (2 calls, ~400 instructions, in a callgrind
// profile). begin() starts a request over; end() releases what it counted.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "filters/decision/decision.hpp"
#include "filters/retry/retry.hpp"
#include "proxy/exchange.hpp"
#include "proxy/http1/head_out.hpp"
#include "proxy/http1/io.hpp"
#include "proxy/request_checks.hpp"
#include "proxy/upstream_attempt.hpp"

namespace vane::proxy {

struct worker_policy;
struct route_table;
struct compiled_route;
struct cluster_target;
struct route_cluster_stats;
struct stream_context;
class h2_call;

struct stream_state {
  // The request.
  const stream_context* cx = nullptr;
  const stream_request* req = nullptr;
  const message_head* head = nullptr;
  worker_policy* policy = nullptr;
  const route_table* table = nullptr;
  // What the steps decided.
  request_target where;
  std::string target_store;  // where.target when it is not in the received head (request_checks.hpp)
  const compiled_route* route = nullptr;
  std::size_t pick = 0;  // the target in route->clusters
  const cluster_target* picked = nullptr;
  upstream_pool* pool = nullptr;
  route_cluster_stats* rstats = nullptr;
  affinity_cookies cookies{};
  request_out how_upstream;
  // When the picked cluster's fault step ran: a cluster fault stands for the cluster, so its delay is
  // part of the first attempt's upstream duration (a route's fault, a body's wait are not).
  std::chrono::steady_clock::time_point first_attempt_start;
  std::chrono::steady_clock::duration cluster_fault_delay{};
  route_cluster_stats* mirror_stats = nullptr;  // set: a copy goes to the mirror
  body_tee tee;
  // The upstream attempts.
  retry_state retry;
  attempt_request attempt;
  attempt_result result;
  std::optional<failure_reply> failure;  // set when no response head arrived
  attempt_failure last_failure;          // of the last attempt that got no response head
  bool fell_back = false;                // the route's fallback took the request (once)
  buffered_body fallback_body;           // the body kept, as the fallback's attempt sends it
  std::optional<h1_parser<false>> response;
  std::optional<h1_sink> upstream_sink;
  std::optional<h1_source<false>> response_body;
  std::shared_ptr<h2_call> h2call;  // the attempt's, on an HTTP/2 cluster (proxy/http2/client)
  bool grpc = false;                // the request is gRPC (content-type application/grpc...)
  bool guard_at_end = false;        // its guard outcome is its gRPC status, counted when the call ends
  // Counted while the request runs; undone by end().
  bool counted_in_flight = false;  // in the worker's requests in flight (cx->w)
  bool counted_in_pool = false;    // in `pool`'s requests
  bool retrying = false;           // and in its retries

  void begin(const stream_context& c, const stream_request& r, worker_policy& p, const route_table& t);
  void end();
};

}  // namespace vane::proxy
