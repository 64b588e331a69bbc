#pragma once
// A route's proxy guard, shared by the workers of the process: their
// windows, whether it has tripped, and what the windows held when it did.
// Each worker counts the guarded cluster's attempts in a window of its own
// (filters/guard: written by that worker only) and, after each, sums every
// worker's window (reads only, no lock): the process trips as one, as soon
// as the attempts of all workers together reach the rule. The worker that
// trips it claims this state, writes what it saw, then sets `tripped`, which
// every worker reads (one relaxed load per request of the route) to leave the
// cluster out of its picks. Only a traffic PUT resets it (the control
// thread); a reload keeps it, since the runtime hands the same state to every
// table while the route guards the same cluster.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filters/guard/guard.hpp"

namespace vane::proxy {

class guard_state {
 public:
  guard_state(std::string route, std::string cluster, std::size_t workers);
  const std::string& route() const { return route_; }
  const std::string& cluster() const { return cluster_; }

  bool tripped() const noexcept { return (state_.load(std::memory_order_relaxed) & 1) != 0; }
  // Bumped by every reset: a worker whose window counted for an older one starts its window over.
  std::uint64_t epoch() const noexcept { return state_.load(std::memory_order_acquire) >> 1; }

  // Worker `worker` counts one attempt by `rule` at `now`. True for the one
  // attempt that trips the guard (its worker logs and counts the trip), with
  // what the windows held in `seen`.
  bool record(std::size_t worker, const guard_rule& rule, guard_window::time_point now, bool failed,
              guard_totals& seen);
  // The control thread: the cluster may take traffic again, every window starts over.
  void reset() noexcept;

  struct view {
    bool tripped = false;
    std::int64_t since_unix_ms = 0;
    std::uint32_t error_per_10k = 0;
    std::uint64_t requests = 0;
  };
  view read() const noexcept;

 private:
  // Trips the guard of `epoch` (not if a reset came in between): true for the one caller that did.
  bool trip(const guard_totals& seen, std::uint64_t epoch) noexcept;

  struct worker_window {
    explicit worker_window(const guard_rule& rule) : window(rule) {}
    guard_window window;
    std::atomic<std::uint64_t> epoch{0};  // the reset it counts since
  };
  std::string route_, cluster_;
  std::vector<std::unique_ptr<worker_window>> windows_;  // per worker
  // The epoch (resets so far) and whether the guard tripped in it, in one word: a trip is a
  // compare-and-swap from (epoch, not tripped), so that a trip on counts from before a reset cannot
  // land after it.
  std::atomic<std::uint64_t> state_{0};
  std::atomic<bool> claimed_{false};  // a worker is writing what it saw (one at a time)
  std::atomic<std::int64_t> since_unix_ms_{0};
  std::atomic<std::uint32_t> error_per_10k_{0};
  std::atomic<std::uint64_t> requests_{0};
};

// The guard states of the process, by route and guarded cluster; kept for
// the process's life (a route guards few clusters), so that a table built by
// a reload gets the very state the previous one had. Control thread only.
class guard_registry {
 public:
  explicit guard_registry(std::size_t workers) : workers_(workers) {}
  std::shared_ptr<guard_state> get(std::string_view route, std::string_view cluster);
  // Resets the route's guard states (every cluster it ever guarded).
  void reset(std::string_view route);

 private:
  std::size_t workers_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<guard_state>, std::less<>> states_;
};

}  // namespace vane::proxy
