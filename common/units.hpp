#pragma once
// Durations ("250ms", "15s", "1.5m", "24h") and sizes ("512", "64KiB", "16MiB", "1GiB")
// as they are written in vane's YAML and flags.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vane {

using duration = std::chrono::milliseconds;

// Returns nullopt for anything that is not a non-negative number followed by
// one of the units ms, s, m, h. A bare number is refused: the unit is not guessable.
std::optional<duration> parse_duration(std::string_view text);
// Returns nullopt for anything that is not a non-negative integer, optionally
// followed by KiB, MiB or GiB (binary units, as Kubernetes writes them), or on overflow.
std::optional<std::uint64_t> parse_size(std::string_view text);

std::string format_duration(duration d);

}  // namespace vane
