#pragma once
// Mirroring (Envoy's request_mirror_policies): which requests of a route get
// a fire-and-forget copy to the mirror cluster, and where the copy says it
// goes. A pure decision over the worker's counter and what the request and
// the mirror's pool show: no socket, no clock.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vane {

struct mirror_rule {
  std::uint32_t per_10k = 10000;  // exact share of the route's requests
  std::uint64_t max_body = 0;     // a larger body is not copied
};

enum class mirror_verdict {
  skip,           // outside the share
  copy,           // tee the body (up to max_body) and send the copy once the request is read
  shed_body,      // the declared body is larger than max_body
  shed_overload,  // the mirror's pool is at its connection limit: copies are shed, never queued
};

// Counts the request in `seen` (exact shares, as faults'). `declared_length`:
// the request's Content-Length, if any; `mirror_busy`: its pool's requests in
// flight reached its connection limit.
mirror_verdict decide_mirror(const mirror_rule& rule, std::uint64_t& seen, std::optional<std::uint64_t> declared_length,
                             bool mirror_busy);

// Envoy's shadow host: "-shadow" appended to the host, before any port
// ("api:8080" → "api-shadow:8080", "[::1]:80" → "[::1]-shadow:80").
std::string shadow_host(std::string_view host);

}  // namespace vane
