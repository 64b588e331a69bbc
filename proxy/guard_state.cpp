#include "proxy/guard_state.hpp"

#include <chrono>

namespace vane::proxy {

guard_state::guard_state(std::string route, std::string cluster, std::size_t workers)
    : route_(std::move(route)), cluster_(std::move(cluster)) {
  for (std::size_t i = 0; i < workers; ++i) windows_.push_back(std::make_unique<worker_window>(guard_rule{}));
}

bool guard_state::record(std::size_t worker, const guard_rule& rule, guard_window::time_point now, bool failed,
                         guard_totals& seen) {
  if (worker >= windows_.size()) return false;
  worker_window& mine = *windows_[worker];
  const std::uint64_t epoch = this->epoch();
  if (mine.epoch.load(std::memory_order_relaxed) != epoch || !(mine.window.rule() == rule)) {
    mine.window.reset(rule);  // a traffic PUT reset the guard, or changed its rule: count afresh
    mine.epoch.store(epoch, std::memory_order_release);
  }
  mine.window.record(now, failed);
  if (tripped()) return false;
  seen = {};
  for (const auto& w : windows_)
    if (w->epoch.load(std::memory_order_acquire) == epoch) seen += w->window.at(now);
  return guard_trips(rule, seen) && trip(seen, epoch);
}

bool guard_state::trip(const guard_totals& seen, std::uint64_t epoch) noexcept {
  if (claimed_.exchange(true, std::memory_order_acq_rel)) return false;
  const auto unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
  since_unix_ms_.store(unix_ms.count(), std::memory_order_relaxed);
  error_per_10k_.store(seen.error_per_10k(), std::memory_order_relaxed);
  requests_.store(seen.requests, std::memory_order_relaxed);
  std::uint64_t untripped = epoch << 1;
  if (state_.compare_exchange_strong(untripped, untripped | 1, std::memory_order_acq_rel)) return true;
  claimed_.store(false, std::memory_order_release);  // reset meanwhile: that epoch is over
  return false;
}

void guard_state::reset() noexcept {
  // The control thread only: the next epoch, not tripped (a trip of the old epoch now fails its swap).
  std::uint64_t now = state_.load(std::memory_order_acquire);
  while (!state_.compare_exchange_weak(now, ((now >> 1) + 1) << 1, std::memory_order_acq_rel)) {
  }
  since_unix_ms_.store(0, std::memory_order_relaxed);
  error_per_10k_.store(0, std::memory_order_relaxed);
  requests_.store(0, std::memory_order_relaxed);
  claimed_.store(false, std::memory_order_release);
}

guard_state::view guard_state::read() const noexcept {
  view v;
  v.tripped = (state_.load(std::memory_order_acquire) & 1) != 0;
  if (!v.tripped) return v;
  v.since_unix_ms = since_unix_ms_.load(std::memory_order_relaxed);
  v.error_per_10k = error_per_10k_.load(std::memory_order_relaxed);
  v.requests = requests_.load(std::memory_order_relaxed);
  return v;
}

std::shared_ptr<guard_state> guard_registry::get(std::string_view route, std::string_view cluster) {
  auto key = std::pair{std::string(route), std::string(cluster)};
  auto& slot = states_[key];
  if (!slot) slot = std::make_shared<guard_state>(key.first, key.second, workers_);
  return slot;
}

void guard_registry::reset(std::string_view route) {
  for (auto& [key, state] : states_)
    if (key.first == route) state->reset();
}

}  // namespace vane::proxy
