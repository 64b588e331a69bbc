#include "common/units.hpp"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>
#include <limits>

namespace vane {

std::optional<duration> parse_duration(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  std::string_view number = text.substr(0, i);
  std::string_view unit = text.substr(i);
  double value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc{} || end != number.data() + number.size()) return std::nullopt;
  double millis_per_unit;
  if (unit == "ms")
    millis_per_unit = 1;
  else if (unit == "s")
    millis_per_unit = 1000;
  else if (unit == "m")
    millis_per_unit = 60'000;
  else if (unit == "h")
    millis_per_unit = 3'600'000;
  else
    return std::nullopt;
  double millis = value * millis_per_unit;
  // At most 100 years: a deadline is now + duration in steady_clock's signed 64-bit nanoseconds, which a
  // larger one (about 292 years) wraps around into the past.
  if (!std::isfinite(millis) || millis > 100 * 365.25 * 86'400'000.0) return std::nullopt;
  return duration{static_cast<std::int64_t>(std::llround(millis))};
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0) return std::nullopt;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + i, value);
  if (ec != std::errc{}) return std::nullopt;
  std::string_view unit = text.substr(i);
  std::uint64_t factor;
  if (unit.empty())
    factor = 1;
  else if (unit == "KiB")
    factor = 1ULL << 10;
  else if (unit == "MiB")
    factor = 1ULL << 20;
  else if (unit == "GiB")
    factor = 1ULL << 30;
  else
    return std::nullopt;
  if (value > std::numeric_limits<std::uint64_t>::max() / factor) return std::nullopt;
  return value * factor;
}

std::string format_duration(duration d) {
  auto ms = d.count();
  if (ms % 3'600'000 == 0 && ms != 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0 && ms != 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string format_utc_ms(std::int64_t unix_ms) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, unix_ms % 1000);
}

std::string utc_now_ms() {
  return format_utc_ms(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

}  // namespace vane
