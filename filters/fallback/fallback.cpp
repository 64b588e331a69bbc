#include "filters/fallback/fallback.hpp"

namespace vane {

bool decide_fallback(const fallback_on& on, const attempt_failure& failure, const fallback_request& request) {
  switch (failure.cause) {
    case retry_cause::connect_failure:
      return on.connect_failure;  // the upstream got nothing: any request may go elsewhere
    case retry_cause::reset:
      if (!on.reset) return false;
      break;
    case retry_cause::timeout:
      if (!on.timeout) return false;
      break;
    case retry_cause::status:
      if (!on.status_5xx || failure.status < 500 || failure.status > 599) return false;
      break;
  }
  return request.idempotent && (!request.has_body || request.body_kept);
}

bool decide_grpc_fallback(const fallback_on& on, unsigned status, const fallback_request& request) {
  if (status >= 32 || ((on.grpc >> status) & 1U) == 0) return false;
  return !request.has_body || request.body_kept;
}

}  // namespace vane
