#pragma once
// The proxy guard's window (route key `guard`, docs/configuration.md): one
// worker's count of a guarded cluster's attempt outcomes over a sliding
// window, and whether their failure share trips the guard. A pure unit over
// the clock values it is given: no socket, no clock of its own, no lock (a
// worker owns its windows; the worker that trips tells the others).
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace vane {

struct guard_rule {
  std::uint32_t max_error_per_10k = 2000;  // trips at this share of failures (hundredths of a percent)...
  std::uint32_t min_requests = 20;         // ...once the window holds at least this many attempts
  std::chrono::milliseconds window{1000};  // counted in 10 buckets of window / 10
  bool operator==(const guard_rule&) const = default;
};

// The rule trips on these counts: at least min_requests, and the failures' share at max_error_percent or above.
struct guard_totals {
  std::uint64_t requests = 0, failures = 0;
  // The failure share in hundredths of a percent (0 with no request).
  std::uint32_t error_per_10k() const noexcept {
    return requests ? static_cast<std::uint32_t>(failures * 10000 / requests) : 0;
  }
  guard_totals& operator+=(const guard_totals& o) noexcept {
    requests += o.requests;
    failures += o.failures;
    return *this;
  }
};
bool guard_trips(const guard_rule& rule, const guard_totals& t) noexcept;

// A failure, as the guard counts attempts: a 5xx from the upstream, or a
// connect failure, reset or timeout (which the proxy counts as 502/503/504).
constexpr bool guard_failure(unsigned status) noexcept { return status >= 500 && status <= 599; }

// Written by one thread (the worker that owns it), read by any: the counts
// are single-writer relaxed atomics, so that a worker can sum every worker's
// window without a lock (a bucket being turned over may be read half-new:
// one attempt off, for a moment).
class guard_window {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  static constexpr std::size_t buckets = 10;

  explicit guard_window(const guard_rule& rule);
  guard_window(const guard_window&) = delete;
  guard_window& operator=(const guard_window&) = delete;
  const guard_rule& rule() const noexcept { return rule_; }

  // Counts one attempt at `now`. True when this attempt trips the guard (once:
  // a tripped window stays tripped until reset()).
  bool record(time_point now, bool failed);
  bool tripped() const noexcept { return tripped_; }
  void reset();
  void reset(const guard_rule& rule);  // and counts by another rule from now on

  using totals = guard_totals;
  // What the window holds at `now` (buckets older than the window left out).
  totals at(time_point now) const;

 private:
  struct bucket {
    std::atomic<std::int64_t> slot{-1};  // which window/10 period since the clock's epoch it counts
    std::atomic<std::uint64_t> requests{0}, failures{0};
  };
  std::int64_t slot_of(time_point t) const;

  guard_rule rule_;
  std::atomic<std::int64_t> width_ns_;  // of a bucket (read by at() from any thread)
  std::array<bucket, buckets> buckets_;
  bool tripped_ = false;
};

}  // namespace vane
