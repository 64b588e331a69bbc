#include "filters/split/split.hpp"

#include <cassert>

namespace vane {

std::size_t pick_smooth(std::span<const std::uint32_t> weights, std::span<std::int64_t> current) {
  assert(weights.size() == current.size() && !weights.empty());
  std::int64_t total = 0;
  std::size_t best = 0;
  std::int64_t best_value = INT64_MIN;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] == 0) continue;
    total += weights[i];
    current[i] += weights[i];
    if (current[i] > best_value) {
      best_value = current[i];
      best = i;
    }
  }
  current[best] -= total;
  return best;
}

std::size_t pick_by_point(std::span<const std::uint32_t> weights, std::uint32_t point) {
  std::uint64_t total = 0;
  for (auto w : weights) total += w;
  std::uint64_t cumulative = 0;
  std::size_t last_positive = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] == 0) continue;
    last_positive = i;
    cumulative += weights[i];
    // Range of i is [floor(prev * P / total), floor(cumulative * P / total)).
    if (static_cast<std::uint64_t>(point) * total < cumulative * split_points) return i;
  }
  return last_positive;
}

}  // namespace vane
