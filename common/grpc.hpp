#pragma once
// gRPC over HTTP/2 as a proxy sees it (grpc/grpc doc/PROTOCOL-HTTP2.md and
// doc/http-grpc-status-mapping.md): which requests are gRPC, their
// deadline (grpc-timeout), the status of an answer, and the status a local
// reply carries. Pure functions: no socket, no clock.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace vane {

// Status codes (google.rpc.Code), 0 OK to 16 UNAUTHENTICATED.
inline constexpr unsigned grpc_status_count = 17;
enum class grpc_code : std::uint8_t {
  ok = 0,
  cancelled = 1,
  unknown = 2,
  invalid_argument = 3,
  deadline_exceeded = 4,
  not_found = 5,
  already_exists = 6,
  permission_denied = 7,
  resource_exhausted = 8,
  failed_precondition = 9,
  aborted = 10,
  out_of_range = 11,
  unimplemented = 12,
  internal = 13,
  unavailable = 14,
  data_loss = 15,
  unauthenticated = 16,
};
// "OK", "UNAVAILABLE", ...
std::string_view grpc_code_name(unsigned code);
// The names of a set of statuses (a bit per code), in code order.
std::vector<std::string_view> grpc_code_names(std::uint32_t codes);
// A name as in retries.on ("unavailable", "deadline-exceeded") or
// Canary fields ("UNAVAILABLE", "DEADLINE_EXCEEDED"), any case, or a number 0..16.
std::optional<unsigned> parse_grpc_code(std::string_view text);

// content-type application/grpc, application/grpc+proto, application/grpc;... (not grpc-web).
bool is_grpc_content_type(std::string_view content_type);

// grpc-timeout: 1 to 8 digits and a unit (H, M, S, m, u, n); nullopt when malformed.
std::optional<std::chrono::nanoseconds> parse_grpc_timeout(std::string_view value);

// A grpc-status value ("0".."16"; other numbers are UNKNOWN as the spec says); nullopt when not a number.
std::optional<unsigned> parse_grpc_status(std::string_view value);

// The status a gRPC client derives from an HTTP status when no grpc-status
// came (http-grpc-status-mapping.md): 400 INTERNAL, 401 UNAUTHENTICATED, 403
// PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, else
// UNKNOWN. A local reply of vane's says what happened more precisely: a
// timeout (504) is DEADLINE_EXCEEDED, overload and no upstream UNAVAILABLE.
unsigned grpc_status_for_http(unsigned http_status);
unsigned grpc_status_for_local_reply(unsigned http_status);

// The failure set of vane-control's success rate and of the proxy guard by
// default (as Linkerd's): UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
// UNAVAILABLE, DATA_LOSS; a bit per code.
inline constexpr std::uint32_t grpc_default_failures =
    (1U << 2) | (1U << 4) | (1U << 12) | (1U << 13) | (1U << 14) | (1U << 15);
constexpr bool grpc_default_failure(unsigned code) { return code < 32 && ((grpc_default_failures >> code) & 1U); }

}  // namespace vane
