#pragma once
// A gRPC health check (grpc.health.v1.Health/Check, grpc/grpc
// doc/health-checking.md) of one endpoint, over HTTP/2 on nghttp2: h2c with
// prior knowledge, or TLS with ALPN h2. It passes when the call ends with
// grpc-status 0 and the answer says SERVING.
//
// Written by hand on nghttp2 (and the two tiny protobuf messages encoded
// here) rather than with grpc++: the proxy links no gRPC library, and a
// check is one request on a connection of its own.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>

#include "common/units.hpp"

namespace vane::proxy {

class client_tls;

boost::asio::awaitable<bool> grpc_health_probe(boost::asio::any_io_executor ex, boost::asio::ip::tcp::endpoint endpoint,
                                               std::string service, std::string authority, duration timeout,
                                               std::shared_ptr<const client_tls> tls, std::string tls_host);

// The request message (HealthCheckRequest{service}) in its gRPC frame; and
// the status of a HealthCheckResponse's message bytes (0 when unreadable).
std::string grpc_health_request(const std::string& service);
int grpc_health_status(std::string_view message);

}  // namespace vane::proxy
