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
// one of the units ms, s, m, h, or for more than 100 years. A bare number is refused: the unit is not guessable.
std::optional<duration> parse_duration(std::string_view text);
// Returns nullopt for anything that is not a non-negative integer, optionally
// followed by KiB, MiB or GiB (binary units, as Kubernetes writes them), or on overflow.
std::optional<std::uint64_t> parse_size(std::string_view text);

std::string format_duration(duration d);

// RFC 3339 UTC with milliseconds ("2026-11-30T14:05:09.123Z") of a time in
// milliseconds since the Unix epoch; and of now.
std::string format_utc_ms(std::int64_t unix_ms);
std::string utc_now_ms();

}  // namespace vane
