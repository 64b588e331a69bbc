#include "control/k8s_session.hpp"

#include <cstdlib>

namespace vane::control {

bool k8s_credentials_offered(const k8s_session_options& o) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  return !o.kubeconfig.empty() || (host != nullptr && *host != '\0');
}

std::optional<k8s_config> k8s_session_config(const k8s_session_options& o, std::string& error) {
  if (!o.kubeconfig.empty()) {
    std::vector<config_error> errors;
    auto config = k8s_kubeconfig(o.kubeconfig, o.context, errors);
    if (config) return config;
    error = "--kubeconfig " + o.kubeconfig + ":";
    for (const auto& e : errors) error += " " + e.to_string() + ";";
    if (!error.empty() && error.back() == ';') error.pop_back();
    return std::nullopt;
  }
  if (!k8s_credentials_offered(o)) {
    error =
        "no Kubernetes API credentials: give --kubeconfig FILE, or run vane-control in a pod with a service "
        "account (KUBERNETES_SERVICE_HOST is not set)";
    return std::nullopt;
  }
  std::string why;
  auto config = k8s_in_cluster_config(why);
  if (!config) error = "the in-cluster Kubernetes config: " + why;
  return config;
}

}  // namespace vane::control
