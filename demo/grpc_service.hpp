#pragma once
// vane-demo's gRPC service (demo/demo.proto): vane.demo.v1.Demo (Echo, Count)
// and grpc.health.v1.Health (Check, Watch), on the HTTP/2 side (h2_server.cpp).
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <string_view>

#include "demo/h2_response.hpp"
#include "demo/state.hpp"

namespace vane::demo {

// The largest request message taken (gRPC's default); a larger one is RESOURCE_EXHAUSTED.
inline constexpr std::size_t max_grpc_message = std::size_t{4} * 1024 * 1024;
// The most messages Count sends (CountRequest.count above it: INVALID_ARGUMENT).
inline constexpr int max_count = 10000;

// A gRPC call: a POST with content-type application/grpc (or application/grpc+proto, ...).
inline bool is_grpc(std::string_view method, std::string_view content_type) {
  return method == "POST" && content_type.starts_with("application/grpc") &&
         (content_type.size() == 16 || content_type[16] == '+' || content_type[16] == ';');
}

struct grpc_request {
  std::string_view path;   // "/vane.demo.v1.Demo/Echo"
  std::string_view body;   // the whole request body: length-prefixed messages
  bool too_large = false;  // the body passed max_grpc_message (and was not kept)
};

// Answers one call, whose request has ended. Failures injected by
// --error-percent / --reset-percent and --latency apply to vane.demo.v1.Demo's
// methods, not to the health service (as /healthz for HTTP).
boost::asio::awaitable<void> serve_grpc(state& st, const grpc_request& req, h2_response& out);

}  // namespace vane::demo
