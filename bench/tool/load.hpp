#pragma once
// vane-bench's load generator: HTTP/1.1 keep-alive connections spread over
// one io_context per thread, sending at a fixed rate from a schedule (open
// loop, as wrk2 and Nighthawk do) or back to back (closed loop, --rate 0).
// Open loop: request i is due at start + i/rate; its latency is taken from
// that due time, not from when a connection got free to send it, so a stall
// shows in the latencies instead of silently lowering the rate (no
// coordinated omission). Latencies go into per-thread log-linear histograms
// (ns, buckets at most 1/64 wide: a reported quantile, the bucket's middle,
// is within 0.8% of the true value); fixed memory, no allocation per request.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/histogram.hpp"

namespace vane::bench {

struct load_options {
  std::string host = "127.0.0.1";  // an IP address
  std::uint16_t port = 80;
  std::string target = "/";
  std::string host_header;                                   // default host:port
  std::vector<std::pair<std::string, std::string>> headers;  // extra request headers
  double rate = 1000;                                        // requests per second in all; 0: closed loop
  std::chrono::nanoseconds duration = std::chrono::seconds(10);
  unsigned connections = 16;
  unsigned threads = 1;
  std::chrono::nanoseconds timeout = std::chrono::seconds(10);  // per request
  std::uint64_t max_requests = 0;                               // stop after this many sends (0: no limit)
  // HTTPS (an https:// URL): each connection handshakes once, then keeps alive.
  bool tls = false;
  std::string ca_file;  // verify the server against this CA (chain and the URL's IP); "" with insecure: no verification
  bool insecure = false;
  std::string sni;  // server name sent; "" = none (the URL holds an IP)
};

struct load_errors {
  std::uint64_t connect = 0;       // could not connect (or the TLS handshake failed)
  std::uint64_t closed = 0;        // connection reset or closed before a whole response
  std::uint64_t timeout = 0;       // no whole response within --timeout
  std::uint64_t bad_response = 0;  // not parseable HTTP/1.1
  std::uint64_t status_4xx = 0;    // answered, but 4xx
  std::uint64_t status_5xx = 0;    // answered, but 5xx
  std::uint64_t total() const { return connect + closed + timeout + bad_response + status_4xx + status_5xx; }
};

struct load_result {
  double seconds = 0;  // from the first due time to the last response
  std::uint64_t sent = 0;
  std::uint64_t completed = 0;  // whole responses (any status)
  std::uint64_t late = 0;       // open loop: sent more than 1 ms after their due time (no free connection)
  load_errors errors;
  log_linear_histogram latency_ns;  // completed requests (any status)
  double achieved_rate() const { return seconds > 0 ? static_cast<double>(completed) / seconds : 0; }
};

// Progress while it runs, about once a second (from the calling thread).
struct load_progress {
  double elapsed = 0;
  std::uint64_t completed = 0;
  std::uint64_t errors = 0;
  double rate_last_second = 0;
  double p99_ms = 0;  // so far
};

load_result run_load(const load_options& options, const std::function<void(const load_progress&)>& on_progress = {});

// Opens `connections` keep-alive connections, sends one request on each and
// reads its answer, then keeps them all open and idle for `hold` (what an
// ingress sees from many quiet clients). Calls `on_held` once all are up;
// returns how many were answered and still open at the end.
std::uint64_t hold_connections(const load_options& options, std::chrono::nanoseconds hold,
                               const std::function<void(std::uint64_t answered)>& on_held);

// The q-quantile as the middle of the bucket holding it (exact below 64 ns); 0 when empty.
double quantile_ns(const log_linear_histogram& h, double q);
// The largest value recorded, to the bucket's upper edge.
double max_ns(const log_linear_histogram& h);

}  // namespace vane::bench
