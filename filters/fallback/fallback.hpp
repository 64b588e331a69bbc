#pragma once
// Canary fallback (route key `fallback`, docs/configuration.md): after an
// attempt on the cluster a route falls back from has failed, whether the
// request goes once to the cluster it falls back to. A pure decision over
// the failure and what the request allows: no socket, no clock; the budget
// is asked by the caller only when this says yes.
#include <cstdint>

#include "filters/retry/retry.hpp"

namespace vane {

// Which failures of `from` fall back (as DESIGN.md names them).
struct fallback_on {
  bool connect_failure = true;
  bool reset = true;
  bool status_5xx = true;
  bool timeout = true;
  // gRPC statuses (a bit per code) of a call that ended at once (Trailers-Only): none unless named, as
  // Envoy's retry_on (a gRPC call is a POST: the server may have acted on it, UNAVAILABLE included).
  std::uint32_t grpc = 0;
  bool operator==(const fallback_on&) const = default;
};

// What the request allows, once the failed attempt is over.
struct fallback_request {
  bool idempotent = false;  // the method may be sent twice (RFC 9110 §9.2.2)
  bool has_body = false;
  bool body_kept = false;  // the whole body was received and kept: it can be sent again
};

// A failure `on` names falls back when sending the request again is safe:
// after a connect failure nothing was sent, so always; otherwise only an
// idempotent method, with its body (if any) kept whole.
bool decide_fallback(const fallback_on& on, const attempt_failure& failure, const fallback_request& request);

// A gRPC call that ended at once with `status` (Trailers-Only) falls back when `on` names the status and
// its request can be sent again whole, whatever its method (gRPC's own retry policy: every call is a POST).
bool decide_grpc_fallback(const fallback_on& on, unsigned status, const fallback_request& request);

}  // namespace vane
