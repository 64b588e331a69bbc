#include "common/grpc.hpp"

#include <array>
#include <charconv>

namespace vane {

namespace {

constexpr std::array<std::string_view, grpc_status_count> names = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

char upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c == '-' ? '_' : c; }

}  // namespace

std::string_view grpc_code_name(unsigned code) { return code < grpc_status_count ? names[code] : "UNKNOWN"; }

std::vector<std::string_view> grpc_code_names(std::uint32_t codes) {
  std::vector<std::string_view> out;
  for (unsigned c = 0; c < grpc_status_count; ++c)
    if ((codes >> c) & 1U) out.push_back(names[c]);
  return out;
}

std::optional<unsigned> parse_grpc_code(std::string_view text) {
  unsigned n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (!text.empty() && ec == std::errc{} && end == text.data() + text.size())
    return n < grpc_status_count ? std::optional<unsigned>(n) : std::nullopt;
  for (unsigned code = 0; code < grpc_status_count; ++code) {
    const std::string_view name = names[code];
    if (name.size() != text.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < name.size() && same; ++i) same = upper(text[i]) == name[i];
    if (same) return code;
  }
  return std::nullopt;
}

bool is_grpc_content_type(std::string_view ct) {
  constexpr std::string_view prefix = "application/grpc";
  if (ct.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if ((ct[i] >= 'A' && ct[i] <= 'Z' ? ct[i] + 32 : ct[i]) != prefix[i]) return false;
  return ct.size() == prefix.size() || ct[prefix.size()] == '+' || ct[prefix.size()] == ';';
}

std::optional<std::chrono::nanoseconds> parse_grpc_timeout(std::string_view v) {
  if (v.size() < 2 || v.size() > 9) return std::nullopt;
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size() - 1, n);
  if (ec != std::errc{} || end != v.data() + v.size() - 1) return std::nullopt;
  using namespace std::chrono;
  switch (v.back()) {
    case 'H':
      return duration_cast<nanoseconds>(hours(n));
    case 'M':
      return duration_cast<nanoseconds>(minutes(n));
    case 'S':
      return duration_cast<nanoseconds>(seconds(n));
    case 'm':
      return duration_cast<nanoseconds>(milliseconds(n));
    case 'u':
      return duration_cast<nanoseconds>(microseconds(n));
    case 'n':
      return nanoseconds(n);
    default:
      return std::nullopt;
  }
}

std::optional<unsigned> parse_grpc_status(std::string_view v) {
  unsigned n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec == std::errc::invalid_argument || end != v.data() + v.size()) return std::nullopt;
  if (ec != std::errc{} || n >= grpc_status_count) return static_cast<unsigned>(grpc_code::unknown);
  return n;
}

unsigned grpc_status_for_http(unsigned s) {
  switch (s) {
    case 400:
      return static_cast<unsigned>(grpc_code::internal);
    case 401:
      return static_cast<unsigned>(grpc_code::unauthenticated);
    case 403:
      return static_cast<unsigned>(grpc_code::permission_denied);
    case 404:
      return static_cast<unsigned>(grpc_code::unimplemented);
    case 429:
    case 502:
    case 503:
    case 504:
      return static_cast<unsigned>(grpc_code::unavailable);
    default:
      return static_cast<unsigned>(grpc_code::unknown);
  }
}

unsigned grpc_status_for_local_reply(unsigned s) {
  if (s == 504 || s == 408) return static_cast<unsigned>(grpc_code::deadline_exceeded);
  if (s == 413) return static_cast<unsigned>(grpc_code::resource_exhausted);
  if (s >= 200 && s < 300) return static_cast<unsigned>(grpc_code::ok);
  return grpc_status_for_http(s);
}

}  // namespace vane
