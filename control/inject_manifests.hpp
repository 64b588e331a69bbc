#pragma once
// `vane-control inject`: Kubernetes manifests (several YAML documents) with
// vane-proxy added to the pod templates that opt in (control/inject.hpp).
//
// Kinds with a pod template: Pod, Deployment, StatefulSet, DaemonSet,
// ReplicaSet, Job (spec.template), CronJob (spec.jobTemplate.spec.template),
// and the items of a List. A pod template opts in with the label
// vane.dev/inject: enabled, or when its namespace (metadata.namespace) is a
// Namespace of the same input labelled so; `all` injects every one that is
// not labelled vane.dev/inject: disabled.
//
// A document that is not changed is written back byte for byte, comments and
// all; a changed one is written again from its parsed form (its leading
// comment lines kept, the others lost). Documents are split on "---" lines
// as Kubernetes' reader splits them.
#include <string>
#include <vector>

#include "common/yaml_doc.hpp"
#include "control/inject.hpp"

namespace vane::control {

struct inject_manifests_result {
  std::string text;                  // the manifests, empty when there are errors
  std::vector<config_error> errors;  // FILE:LINE:COL: bad YAML, a document that is not a mapping, a malformed pod
  std::vector<std::string> notes;    // "FILE:LINE: Deployment frontend: injected", one per pod template seen
};

inject_manifests_result inject_manifests(const std::string& text, const std::string& file_name,
                                         const inject_options& options);

}  // namespace vane::control
