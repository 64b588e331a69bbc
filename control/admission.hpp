#pragma once
// The mutating admission webhook's answer to one AdmissionReview
// (admission.k8s.io/v1): the pod in request.object injected with
// control/inject.hpp's transform, as a base64 JSON Patch.
//
// Which pods are sent is the MutatingWebhookConfiguration's choice (its
// namespaceSelector and objectSelector: pods labelled vane.dev/inject:
// enabled, or in a namespace labelled so); the webhook cannot read
// namespaces, so it injects every pod it is sent unless the pod is labelled
// vane.dev/inject: disabled. A review that is not one (not JSON, another
// kind or apiVersion, no request.uid or request.object) is answered 400 with
// {"error": "..."}; anything else is allowed, with a patch only when the pod
// changed, and with a warning when the pod could not be injected (a malformed
// spec): a webhook must not be the reason a pod cannot start.
#include <string>
#include <string_view>

#include "common/http_server.hpp"
#include "control/inject.hpp"

namespace vane::control {

struct admission_result {
  http_server_reply reply;
  std::string log_line;  // what happened, for the log: "pod demo/frontend-*: injected"
};

// `options.all` is implied (see above).
admission_result review_admission(std::string_view body, const inject_options& options);

// RFC 4648 base64 with padding (the AdmissionResponse's patch).
std::string base64_encode(std::string_view bytes);

}  // namespace vane::control
