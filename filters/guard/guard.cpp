#include "filters/guard/guard.hpp"

#include <algorithm>

namespace vane {

guard_window::guard_window(const guard_rule& rule)
    : rule_(rule),
      width_(std::max<std::chrono::nanoseconds>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(rule.window) / static_cast<std::int64_t>(buckets),
          std::chrono::nanoseconds(1))) {}

std::int64_t guard_window::slot_of(time_point t) const { return t.time_since_epoch() / width_; }

bool guard_window::record(time_point now, bool failed) {
  const std::int64_t slot = slot_of(now);
  bucket& b = buckets_[static_cast<std::size_t>(slot % static_cast<std::int64_t>(buckets))];
  if (b.slot != slot) b = bucket{slot, 0, 0};  // a bucket from an older turn of the window starts over
  ++b.requests;
  if (failed) ++b.failures;
  if (tripped_) return false;
  const totals t = at(now);
  if (t.requests < rule_.min_requests) return false;
  if (t.failures * 10000 < std::uint64_t{rule_.max_error_per_10k} * t.requests) return false;
  tripped_ = true;
  return true;
}

guard_window::totals guard_window::at(time_point now) const {
  const std::int64_t current = slot_of(now);
  totals t;
  for (const bucket& b : buckets_) {
    if (b.slot > current - static_cast<std::int64_t>(buckets) && b.slot <= current) {
      t.requests += b.requests;
      t.failures += b.failures;
    }
  }
  return t;
}

void guard_window::reset() {
  buckets_ = {};
  tripped_ = false;
}

}  // namespace vane
