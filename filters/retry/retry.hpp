#pragma once
// Retries (Envoy's retry policy, Istio's `retries`): after an upstream
// attempt ends without a response the client may see, whether the stream
// tries again. A pure decision over the attempt's result and the request's
// state: no socket, no clock; the cluster's retry budget is asked by the
// caller only when this says a retry is wanted.
#include <cstdint>
#include <string_view>

namespace vane {

// Which failures a route retries (Envoy's retry_on, named as DESIGN.md does).
enum class retry_cause { connect_failure, reset, timeout, status };
struct retry_on {
  bool connect_failure = true;
  bool reset = true;
  bool status_5xx = false;     // any 5xx, and connect failures, resets, timeouts
  bool gateway_error = false;  // 502/503/504, and connect failures, resets, timeouts
  // gRPC statuses (a bit per code) of a Trailers-Only answer that are retried (Envoy's retry_on
  // cancelled, deadline-exceeded, internal, resource-exhausted, unavailable).
  std::uint32_t grpc = 0;
  bool operator==(const retry_on&) const = default;
};
bool retry_wanted(const retry_on& on, retry_cause cause, unsigned status);
// RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE.
bool is_idempotent(std::string_view method);

// How an upstream attempt ended, as the retry step sees it.
struct attempt_failure {
  retry_cause cause = retry_cause::reset;
  unsigned status = 0;       // the status answered (cause status) or made of the failure
  bool stale_reuse = false;  // a reused idle connection failed before the upstream read anything
  // An HTTP/2 stream the upstream refused unprocessed (REFUSED_STREAM, or above a GOAWAY's last
  // stream; RFC 9113 §8.7): safe to send again, on any connection that takes streams.
  bool refused = false;
  // The request went out whole before the failure (it failed waiting for the answer): the upstream
  // may have applied it, so only an idempotent method is resent on a stale connection.
  bool sent = false;
};

// Refused streams sent again per request at most (a server that refuses
// everything is answered with 502 then, not looped on).
inline constexpr std::uint32_t max_refused_resends = 5;

// What the request allows.
struct retry_state {
  const retry_on* on = nullptr;    // the route's retries; null: none configured
  std::uint32_t retries_left = 0;  // of the route's attempts
  bool idempotent = false;         // the method may be sent twice
  bool has_body = false;
  bool body_touched = false;          // some of the body was consumed: it cannot be sent again
  bool resent_stale = false;          // the one stale-connection resend was used
  std::uint32_t refused_resends = 0;  // refused HTTP/2 streams sent again (up to max_refused_resends)
};

enum class retry_verdict {
  give_up,       // the failure is the answer
  resend_stale,  // send again (a stale connection: on a fresh one); not an attempt, no budget
  retry,         // try again if the cluster's retry budget allows
};

// A stale pooled connection (closed by the upstream while idle) is resent
// once for a bodiless request: whatever its method when the request did not
// go out whole, an idempotent one only when it did (the upstream may have
// applied it; RFC 9110 §9.2.2: a proxy does not retry the others). Else
// a retry needs: retries left, a cause the route retries, a body not yet
// consumed, and an idempotent method unless the upstream never got the
// request (connect failure).
retry_verdict decide_retry(const attempt_failure& failure, const retry_state& state);

}  // namespace vane
