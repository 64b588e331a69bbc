#pragma once
// Where vane-control's Kubernetes credentials come from, for every part that
// needs the API (the --kubernetes mode, k8s: proxies, --leader-elect): the
// kubeconfig of --kubeconfig FILE, else the pod's service account (in-cluster
// config, when KUBERNETES_SERVICE_HOST is set). One place, so that every
// flag that needs the API reads the same credentials and says the same thing
// when there are none.
#include <optional>
#include <string>

#include "control/k8s_config.hpp"

namespace vane::control {

struct k8s_session_options {
  std::string kubeconfig;  // --kubeconfig FILE; "" for the in-cluster config
  std::string context;     // its context; "" for current-context
};

// Whether credentials may be found at all: --kubeconfig given, or KUBERNETES_SERVICE_HOST set.
bool k8s_credentials_offered(const k8s_session_options& o);

// The config, or nullopt and `error` (one line, saying what to give) when
// there is none or it does not load.
std::optional<k8s_config> k8s_session_config(const k8s_session_options& o, std::string& error);

}  // namespace vane::control
