#include "filters/retry/retry.hpp"

namespace vane {

bool retry_wanted(const retry_on& on, retry_cause cause, unsigned status) {
  switch (cause) {
    case retry_cause::connect_failure:
      return on.connect_failure || on.status_5xx || on.gateway_error;
    case retry_cause::reset:
      return on.reset || on.status_5xx || on.gateway_error;
    case retry_cause::timeout:
      return on.status_5xx || on.gateway_error;
    case retry_cause::status:
      return (on.status_5xx && status >= 500 && status <= 599) || (on.gateway_error && status >= 502 && status <= 504);
  }
  return false;
}

bool is_idempotent(std::string_view method) {
  for (std::string_view m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
    if (method == m) return true;
  return false;
}

retry_verdict decide_retry(const attempt_failure& failure, const retry_state& state) {
  if (failure.stale_reuse && !state.has_body &&
      (failure.refused ? state.refused_resends < max_refused_resends
                       : !state.resent_stale && (!failure.sent || state.idempotent)))
    return retry_verdict::resend_stale;
  if (!state.on || state.retries_left == 0 || !retry_wanted(*state.on, failure.cause, failure.status))
    return retry_verdict::give_up;
  if (state.has_body && state.body_touched) return retry_verdict::give_up;
  if (failure.cause != retry_cause::connect_failure && !state.idempotent) return retry_verdict::give_up;
  return retry_verdict::retry;
}

}  // namespace vane
