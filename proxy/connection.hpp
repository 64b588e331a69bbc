#pragma once
#include <string>

#include "proxy/executor.hpp"

namespace vane::proxy {
class worker;
struct listener_stats;

// Serves one downstream connection until it closes: reads each request head
// (with limits and timeouts), picks the route and cluster on the worker's
// current snapshot, relays the request and response bodies as streams, and
// keeps both sides alive when HTTP allows it. The listener is named, not
// indexed: a reload may renumber listeners while the connection lives.
task<void> serve_connection(worker& w, worker_socket socket, std::string listener, listener_stats* stats);
}  // namespace vane::proxy
