#pragma once
// A request's stream: the route's steps in order, then the upstream
// attempts, then the response — the same for every codec (proxy/exchange.hpp).
//
// Steps, each a function of the stream's state that says go on or stop with
// a local reply (step_result), in this order:
//   checks (Host, target, framing; proxy/request_checks) → route match
//   (filters/route_match) → rules, affinity and split (filters/decision) →
//   limits (the worker's max_in_flight) → header rewrite (the upstream head,
//   proxy/http1/head_out) → faults, the route's then the picked cluster's
//   (filters/fault) → mirror (filters/mirror)
// then the request body's first batch, the upstream attempts
// (proxy/upstream_attempt) with retries (filters/retry), the mirror copy,
// and the response relayed to the downstream. docs/architecture.md says
// where a new step goes.
#include <cstddef>
#include <memory>

#include "proxy/exchange.hpp"
#include "proxy/request_meter.hpp"

namespace vane::proxy {

class worker;
struct worker_policy;
struct request_scratch;

// What the connection gives each of its requests.
struct stream_context {
  worker& w;
  const std::shared_ptr<worker_policy>& policy;  // the snapshot this request runs on (pinned by the caller)
  std::size_t listener = 0;                      // index in the policy's route table
  request_scratch& scratch;                      // the upstream head and response buffers
  request_meter& meter;
};

struct stream_state;

// The steps before any I/O, in the order above: run from step `next` on,
// until one stops the request or asks for a wait (its delay), or all ran
// (next == step_count, an empty result). `s` was begun (stream_state::begin).
inline constexpr std::size_t step_count = 8;
step_result run_steps(stream_state& s, std::size_t& next);

// Serves one request to its end. True: the connection may serve another.
task<bool> run_stream(const stream_context& cx, const stream_request& req, downstream& ds);

}  // namespace vane::proxy
