#pragma once
// vane-bench's built-in upstream: answers every request with the same small
// response (keep-alive), as cheaply as it can, so that a benchmark measures
// the proxy and not the service behind it.
#include <cstdint>
#include <string>

namespace vane::bench {

struct upstream_options {
  std::string listen = "127.0.0.1:0";
  std::size_t body_bytes = 100;
  unsigned threads = 1;
  std::string version = "bench";  // x-version header: which upstream answered
};

// Listens, prints "vane-bench upstream listening on HOST:PORT", serves until SIGINT/SIGTERM.
int run_upstream(const upstream_options& options);

}  // namespace vane::bench
