#include "demo/state.hpp"

#include <array>
#include <boost/json.hpp>
#include <charconv>

namespace vane::demo {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 17> grpc_names{
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

// A status to fail calls with: not OK.
bool failing_code(const json::value& value, int& code) {
  std::optional<int> c;
  if (value.is_int64())
    c = value.as_int64() >= 0 && value.as_int64() <= 16 ? std::optional<int>(static_cast<int>(value.as_int64()))
                                                        : std::nullopt;
  else if (value.is_string())
    c = parse_grpc_code(value.as_string());
  if (!c || *c == 0) return false;
  code = *c;
  return true;
}

}  // namespace

std::string_view grpc_code_name(int code) {
  return code >= 0 && code < static_cast<int>(grpc_names.size()) ? grpc_names[static_cast<std::size_t>(code)]
                                                                 : std::string_view("UNKNOWN");
}

std::optional<int> parse_grpc_code(std::string_view text) {
  int n = 0;
  if (auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      ec == std::errc{} && end == text.data() + text.size())
    return n >= 0 && n < static_cast<int>(grpc_names.size()) ? std::optional<int>(n) : std::nullopt;
  std::string upper(text);
  for (auto& c : upper) c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (std::size_t i = 0; i < grpc_names.size(); ++i)
    if (grpc_names[i] == upper) return static_cast<int>(i);
  return std::nullopt;
}

json::object stats_json(const state& st) {
  json::object by_status;
  for (const auto& [name, n] : st.grpc_status) by_status[name] = n;
  return {{"version", st.s.version},
          {"requests", st.requests},
          {"errors", st.errors},
          {"resets", st.resets},
          {"connections_total", st.connections_total},
          {"connections_active", st.connections_active},
          {"service_connections", st.service_connections},
          {"h2_connections", st.h2_connections},
          {"h2_goaways", st.h2_goaways},
          {"h2_refused", st.h2_refused},
          {"bytes_received", st.bytes_received},
          {"grpc_calls", st.grpc_calls},
          {"grpc_errors", st.grpc_errors},
          {"grpc_status", std::move(by_status)},
          {"last_host", st.last_host},
          {"last_body", st.last_body},
          {"error_percent", st.s.error_percent},
          {"error_status", st.s.error_status},
          {"grpc_error_status", st.s.grpc_error_status},
          {"reset_percent", st.s.reset_percent},
          {"latency", vane::format_duration(st.s.latency)},
          {"h2_max_streams", st.s.h2_max_streams},
          {"h2_goaway_after", st.s.h2_goaway_after}};
}

std::string apply_config(state& st, std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return "body must be a JSON object";
  settings next = st.s;
  for (const auto& [key, value] : v.as_object()) {
    if (key == "error_percent" || key == "reset_percent") {
      if (!value.is_int64() || value.as_int64() < 0 || value.as_int64() > 100)
        return std::string(key) + " must be an integer from 0 to 100";
      (key == "error_percent" ? next.error_percent : next.reset_percent) = static_cast<int>(value.as_int64());
    } else if (key == "error_status") {
      if (!value.is_int64() || value.as_int64() < 500 || value.as_int64() > 599)
        return "error_status must be an integer from 500 to 599";
      next.error_status = static_cast<unsigned>(value.as_int64());
    } else if (key == "grpc_error_status") {
      if (!failing_code(value, next.grpc_error_status))
        return "grpc_error_status must be a gRPC status from 1 to 16 or its name (\"unavailable\")";
    } else if (key == "version") {
      if (!value.is_string() || value.as_string().empty()) return "version must be a non-empty string";
      next.version = value.as_string();
    } else if (key == "latency") {
      auto d = value.is_string() ? vane::parse_duration(value.as_string()) : std::nullopt;
      if (!d) return "latency must be a duration such as \"50ms\"";
      next.latency = *d;
    } else {
      return "unknown key '" + std::string(key) + "'";
    }
  }
  st.s = next;
  return {};
}

}  // namespace vane::demo
