#pragma once
// The Kubernetes objects `vane-control --kubernetes` reads and writes, as
// Flagger shapes them (docs/kubernetes.md): the primary Deployment built from
// the target, the config copies, the Services, the HPA copy, the revision
// hash, a Deployment's rollout as `kubectl rollout status` reads it, the
// Canary's status and its Events. Pure functions on JSON: nothing here talks
// to the API server (control/k8s_mode.cpp does), and nothing throws on an
// object of an unexpected shape (a missing field reads as absent).
#include <boost/json/object.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/run.hpp"

namespace vane::control::k8s {

// What the Canary says beyond what the analysis reads (canary_spec).
struct canary_extras {
  std::string ns, name, uid;
  std::string target;              // spec.targetRef.name
  std::string autoscaler;          // spec.autoscalerRef.name, "" without one
  std::string service;             // spec.service.name, default the target's name (the apex)
  std::int64_t port = 0;           // spec.service.port; 0: no Services are made
  boost::json::value target_port;  // spec.service.targetPort, default the port
  std::string port_name = "http";
  std::int64_t progress_deadline_seconds = 600;
};
canary_extras read_extras(const boost::json::object& canary);

// A ConfigMap or Secret a pod template references (volumes, projected volumes, env, envFrom).
struct config_ref {
  std::string kind;  // "ConfigMap" or "Secret"
  std::string name;
  bool operator<(const config_ref& o) const { return kind != o.kind ? kind < o.kind : name < o.name; }
  bool operator==(const config_ref& o) const = default;
};
std::vector<config_ref> config_refs(const boost::json::object& pod_template);  // sorted, each once
// Whether a ConfigMap or Secret is tracked (not annotated flagger.app/config-tracking: disabled).
bool tracked(const boost::json::object& config);

// The label that selects the target's pods (app, name or app.kubernetes.io/name, as Flagger looks)
// and its value; nullopt when the Deployment's selector has none of them.
std::optional<std::pair<std::string, std::string>> selector_label(const boost::json::object& deployment);

// The revision: sha256 of the pod template and every tracked config's data, 16 hex digits.
std::string revision_hash(const boost::json::object& pod_template, const std::vector<boost::json::object>& configs);
// "configmap/NAME" -> sha256 of its data, 8 hex digits (status.trackedConfigs).
boost::json::object tracked_configs(const std::vector<boost::json::object>& configs);

boost::json::object owner_reference(const canary_extras& c);
// The target's pod template for the primary: the selector label's value suffixed -primary,
// references to the tracked configs renamed NAME-primary.
boost::json::object primary_template(const boost::json::object& target_template, const std::string& label,
                                     const std::string& value, const std::vector<config_ref>& tracked_refs);
// <target>-primary, to create: the target's spec (replicas at least 1), selector and template rewritten.
boost::json::object primary_deployment(const boost::json::object& target, const canary_extras& c,
                                       const std::vector<config_ref>& tracked_refs);
// On promotion: what of the target's spec the primary takes (template, strategy, minReadySeconds...).
void promote_into(boost::json::object& primary, const boost::json::object& target,
                  const std::vector<config_ref>& tracked_refs);
// NAME-primary, a copy of a ConfigMap or Secret's data.
boost::json::object primary_config(const boost::json::object& config, const canary_extras& c);
// Copies data (and binaryData, stringData, type) into an existing copy; false when nothing changes.
bool refresh_config(boost::json::object& copy, const boost::json::object& config);
// A ClusterIP Service NAME selecting label=value on the Canary's port.
boost::json::object service(const std::string& name, const std::string& label, const std::string& value,
                            const canary_extras& c);
// <autoscaler>-primary, scaling <target>-primary.
boost::json::object primary_hpa(const boost::json::object& hpa, const canary_extras& c);

// A Deployment's rollout, as `kubectl rollout status` reads its status.
struct rollout {
  bool done = false;
  bool deadline_exceeded = false;  // the Progressing condition says ProgressDeadlineExceeded
  std::string waiting;             // why it is not done
  std::int64_t replicas = 0;       // spec.replicas (1 when absent)
};
rollout rollout_status(const boost::json::object& deployment);
std::int64_t spec_replicas(const boost::json::object& deployment);  // -1 when absent

// The Canary's status as Flagger writes it. `previous` is the status read, whose Promoted condition's
// lastTransitionTime is kept while its status and reason stay.
boost::json::object canary_status(const run_state& st, const std::string& last_promoted,
                                  const boost::json::object& tracked, const boost::json::object& previous,
                                  const std::string& now);
// What a status says of the run (a restarted controller resumes from it); last_promoted from lastPromotedSpec.
run_state state_from_status(const boost::json::object& status, std::string& last_promoted);

// A core/v1 Event about the Canary: Normal, or Warning for Flagger's warnings (halts, rollbacks, failures).
boost::json::object event(const canary_extras& c, const std::string& message, const std::string& now,
                          std::uint64_t sequence);

// A Canary, MetricTemplate or AlertProvider as a document for parse_documents: apiVersion, kind,
// metadata's name and namespace, spec (JSON text, which YAML reads).
std::string document_text(const boost::json::object& object);

// RFC 3339 UTC time now, as metav1.Time ("2024-01-01T00:00:00Z").
std::string now_rfc3339();

}  // namespace vane::control::k8s
