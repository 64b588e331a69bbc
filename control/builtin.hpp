#pragma once
// vane-control's builtin metrics (DESIGN.md "Builtin metrics"), computed from
// the proxies' /stats/latency: per proxy instance, the change over a window
// of its upstream (or mirror) counts and fine latency histogram for a route's
// cluster, with counter resets handled; summed over the fleet; then the
// success rate (% not 5xx) and the p99 (ms, interpolated in its bucket as
// histogram_quantile does). Pure: snapshots in, numbers out.
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/histogram.hpp"
#include "control/parse.hpp"
#include "control/run.hpp"

namespace vane::control {

// One (cluster, part) of one route as a proxy reported it at one time.
struct series {
  std::uint64_t total = 0;                              // attempts
  std::uint64_t errors = 0;                             // of them 5xx, or a gRPC status of the failure set
  std::shared_ptr<const log_linear_histogram> latency;  // µs; shared: snapshots are kept a while
};

struct proxy_snapshot {
  std::chrono::steady_clock::time_point at;
  double process_start_time = 0;
  std::map<std::string, series> by_key;  // series_key(cluster, part)
};

std::string series_key(std::string_view cluster, std::string_view part);  // part: "upstream" or "mirror"

// The route's series out of a /stats/latency answer, read without throwing: an answer of another shape
// (a count that is not a non-negative integer, a bucket that is not [lower, upper, count], ...) is why.
// `grpc_failures`: the gRPC statuses (a bit per code) of attempts answered
// with a non-5xx HTTP status ("grpc" in a part) that count as errors too.
parsed<proxy_snapshot> read_snapshot(const boost::json::object& stats, std::string_view route,
                                     std::chrono::steady_clock::time_point at,
                                     std::uint32_t grpc_failures = default_grpc_failures);
// read_snapshot, or an empty snapshot when the answer cannot be read.
proxy_snapshot snapshot_from_stats(const boost::json::object& stats, std::string_view route,
                                   std::chrono::steady_clock::time_point at,
                                   std::uint32_t grpc_failures = default_grpc_failures);

// What a window holds, summed over proxies.
struct window {
  std::uint64_t total = 0;
  std::uint64_t errors = 0;
  log_linear_histogram latency;
  bool inconclusive = false;  // some proxy had no earlier snapshot (first seen, or the controller restarted)
  void add(const window& w);
};

// The change of one series between two snapshots of the same proxy. A reset
// (another process_start_time, or any count that went down) makes the later
// snapshot's values the change.
window delta(const proxy_snapshot* before, const proxy_snapshot& after, const std::string& key);

// The snapshots of one proxy, oldest first; the window of a metric with
// interval I runs from the newest snapshot at least I old (or the oldest one
// when none is that old) to the newest.
class proxy_history {
 public:
  void add(proxy_snapshot s, std::chrono::steady_clock::duration keep);
  // nullopt when there is no snapshot yet.
  std::optional<window> over(std::chrono::steady_clock::duration interval, const std::string& key) const;
  const proxy_snapshot* latest() const { return snaps_.empty() ? nullptr : &snaps_.back(); }
  // A new run: its windows start at the latest snapshot (read at most a second ago), not before.
  void start_over() {
    while (snaps_.size() > 1) snaps_.pop_front();
  }

 private:
  std::deque<proxy_snapshot> snaps_;
};

// A builtin metric (request-success-rate, request-duration) over the fleet's histories: the canary's
// window (its mirror series when `mirror`), relative to the primary's when the metric says so.
// Inconclusive: `unreachable` proxies (their numbers must not count as zero errors), a first window,
// fewer than minRequests.
metric_reading builtin_reading(const metric_spec& m, const std::map<std::string, proxy_history>& histories,
                               std::size_t unreachable, std::string_view canary, std::string_view primary, bool mirror);

// % of the window's attempts that are not 5xx; nullopt without attempts.
std::optional<double> success_rate(const window& w);
// The p99 in ms; nullopt without attempts.
std::optional<double> p99_ms(const window& w);

}  // namespace vane::control
