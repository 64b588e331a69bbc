#pragma once
// `vane-control --kubernetes`: Flagger's Canary, MetricTemplate and
// AlertProvider objects (flagger.app/v1beta1, Canaries with spec.provider:
// vane) read from the API server with list+watch, and the cluster's side of
// each run done as Flagger does it (docs/kubernetes.md): initialization
// (<target>-primary, config copies, Services, HPA copy, target scaled to 0),
// revision detection from the pod template and its configs, scale up and
// rollout wait, promotion by copying the template, the status subresource and
// Events. The analysis itself is the file mode's (control/run.cpp), driven
// by the same controller (control/controller.cpp) through cluster_hooks.
#include <optional>
#include <string>

#include "control/controller.hpp"
#include "control/inject_webhook.hpp"
#include "control/leader_election.hpp"

namespace vane::control {

struct kubernetes_options {
  std::string namespace_name;                       // "" for every namespace
  std::optional<inject_webhook_options> webhook;    // --inject-webhook beside it, on the same thread
  std::optional<leader_election_options> election;  // --leader-elect: the canary work only while leading
};

// Runs the controller on the API server of options.kubernetes (which must be set) until SIGTERM/SIGINT
// (0), or until leadership is lost (1); 1 (with why on stderr) when it cannot start.
int run_kubernetes(controller_options options, const kubernetes_options& k8s);

}  // namespace vane::control
