#include "filters/guard/guard.hpp"

#include <algorithm>

namespace vane {

namespace {
std::chrono::nanoseconds bucket_width(const guard_rule& rule) {
  return std::max<std::chrono::nanoseconds>(std::chrono::duration_cast<std::chrono::nanoseconds>(rule.window) /
                                                static_cast<std::int64_t>(guard_window::buckets),
                                            std::chrono::nanoseconds(1));
}
// One writer: a load and a store, no read-modify-write.
void bump(std::atomic<std::uint64_t>& n) { n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
}  // namespace

bool guard_trips(const guard_rule& rule, const guard_totals& t) noexcept {
  return t.requests >= rule.min_requests && t.failures * 10000 >= std::uint64_t{rule.max_error_per_10k} * t.requests;
}

guard_window::guard_window(const guard_rule& rule) : rule_(rule), width_ns_(bucket_width(rule).count()) {}

std::int64_t guard_window::slot_of(time_point t) const {
  return t.time_since_epoch() / std::chrono::nanoseconds(width_ns_.load(std::memory_order_relaxed));
}

bool guard_window::record(time_point now, bool failed) {
  const std::int64_t slot = slot_of(now);
  bucket& b = buckets_[static_cast<std::size_t>(slot % static_cast<std::int64_t>(buckets))];
  if (b.slot.load(std::memory_order_relaxed) != slot) {  // a bucket from an older turn of the window starts over
    b.requests.store(0, std::memory_order_relaxed);
    b.failures.store(0, std::memory_order_relaxed);
    b.slot.store(slot, std::memory_order_release);  // after the zeroed counts: a reader never sees them old
  }
  bump(b.requests);
  if (failed) bump(b.failures);
  if (tripped_ || !guard_trips(rule_, at(now))) return false;
  tripped_ = true;
  return true;
}

guard_window::totals guard_window::at(time_point now) const {
  const std::int64_t current = slot_of(now);
  totals t;
  for (const bucket& b : buckets_) {
    const std::int64_t slot = b.slot.load(std::memory_order_acquire);
    if (slot > current - static_cast<std::int64_t>(buckets) && slot <= current) {
      t.requests += b.requests.load(std::memory_order_relaxed);
      t.failures += b.failures.load(std::memory_order_relaxed);
    }
  }
  return t;
}

void guard_window::reset() {
  for (bucket& b : buckets_) {
    b.slot.store(-1, std::memory_order_relaxed);
    b.requests.store(0, std::memory_order_relaxed);
    b.failures.store(0, std::memory_order_relaxed);
  }
  tripped_ = false;
}

void guard_window::reset(const guard_rule& rule) {
  rule_ = rule;
  width_ns_.store(bucket_width(rule).count(), std::memory_order_relaxed);
  reset();
}

}  // namespace vane
