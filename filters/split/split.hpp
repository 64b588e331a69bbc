#pragma once
// The weighted split: which cluster of a route's split gets a request.
//
// Both picks are pure functions of the weights and an injected state or value,
// so they are unit-tested and benchmarked without sockets, clocks or randomness.
#include <cstddef>
#include <cstdint>
#include <span>

namespace vane {

// Sticky picks hash a key to a point in [0, split_points).
inline constexpr std::uint32_t split_points = 10'000;

// Smooth weighted round-robin (the algorithm of nginx's upstream module):
// every pick adds each weight to its running `current` value, takes the
// largest, and subtracts the total from the winner. Over any window of
// sum(weights) picks each index is chosen exactly `weight` times, and the
// picks are interleaved as evenly as possible (90/10 gives one canary pick in
// every ten, not ten in a row). `current` is per-worker state, same size as
// `weights`, initially zero. Zero weights are never picked; at least one
// weight must be positive.
std::size_t pick_smooth(std::span<const std::uint32_t> weights, std::span<std::int64_t> current);

// Sticky pick: the clusters take consecutive ranges of [0, split_points) in
// the order listed, each as wide as its share of the total weight. With the
// canary listed last, growing its weight only moves points from the ranges
// before it to the canary.
std::size_t pick_by_point(std::span<const std::uint32_t> weights, std::uint32_t point);

}  // namespace vane
