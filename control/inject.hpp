#pragma once
// Sidecar injection (docs/control.md "Injection"): vane-proxy added to a pod,
// in the JSON form of a pod (a Pod, or a workload's pod template: an object
// with `metadata` and `spec`). One transform for both ways in: `vane-control
// inject` on manifests (inject_manifests.*) and the admission webhook
// (admission.*).
//
// What is added comes from k8s/base/proxy/proxy-container.yaml, compiled in,
// so that the kustomize Component and this transform cannot drift apart: the
// container (a native sidecar: first init container, restartPolicy: Always;
// or, classic, the last container), its two volumes (the proxy config from
// the ConfigMap the annotation vane.dev/proxy-config names, default
// vane-proxy-config; the admin token from the Secret vane-admin-token), the
// Prometheus scrape annotations, the grace period, and the fleet label
// vane.dev/fleet (kept when the pod has one; else the ConfigMap's name).
//
// Idempotent: a pod with a container named vane-proxy (init or not) is left
// as it is. A volume the pod already has by name is kept (the pod's own
// choice wins).
#include <boost/json/object.hpp>
#include <string>
#include <string_view>

namespace vane::control {

inline constexpr std::string_view inject_label = "vane.dev/inject";  // enabled | disabled
inline constexpr std::string_view proxy_config_annotation = "vane.dev/proxy-config";
inline constexpr std::string_view fleet_label = "vane.dev/fleet";
inline constexpr std::string_view proxy_container_name = "vane-proxy";

struct inject_options {
  // Inject every pod that is not labelled vane.dev/inject: disabled (the
  // webhook, `inject --all`, a Namespace labelled enabled); otherwise only
  // pods labelled vane.dev/inject: enabled.
  bool all = false;
  bool classic_sidecar = false;  // a plain container, for clusters before 1.29
};

enum class inject_outcome {
  injected,
  already_injected,  // a container named vane-proxy is there
  not_opted_in,      // no vane.dev/inject: enabled (and not `all`)
  opted_out,         // vane.dev/inject: disabled
  malformed,         // a part the transform needs is not of the right type: `message` says which
};

struct inject_result {
  inject_outcome outcome = inject_outcome::not_opted_in;
  std::string message;  // for malformed: "spec.containers must be a list" (prefixed by the caller's path)
};

// Adds vane-proxy to `pod` (see above); `path` prefixes the field names of a
// malformed pod's message ("spec.template."). `pod` is changed only when the
// outcome is `injected`.
inject_result inject_pod(boost::json::object& pod, const inject_options& options, std::string_view path = "");

// What the transform adds, as read from k8s/base/proxy/proxy-container.yaml
// (a Deployment patch): its spec.template. For tests comparing the two.
const boost::json::object& proxy_pod_template();

}  // namespace vane::control
