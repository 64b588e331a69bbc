#pragma once
// Where the Kubernetes API server is and how vane-control proves who it is:
// in a pod (the service account's files), or from a kubeconfig file (as
// kubectl reads one). Nothing here talks to the server; control/k8s_client.hpp does.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/yaml_doc.hpp"

namespace vane::control {

struct k8s_config {
  std::string host;       // a name or an address (IPv6 without brackets)
  std::string port;       // "443" when the server URL names none
  std::string base_path;  // a path before /api and /apis ("" mostly; "/k8s/clusters/c-1" behind a proxy)
  std::string server;     // the server as configured ("https://10.96.0.1:443"), for messages
  // The CA bundle (PEM text) the server's certificate must chain to; empty:
  // the system's CAs. The name checked is tls_server_name, or host.
  std::string ca_pem;
  std::string tls_server_name;
  bool insecure_skip_tls_verify = false;  // kubeconfig's insecure-skip-tls-verify (never in a pod)
  std::string client_certificate_pem;     // with client_key_pem, a client certificate (PEM text)
  std::string client_key_pem;
  std::string token;                       // a bearer token given as text ...
  std::string token_file;                  // ... or read from this file, and read again every minute (tokens rotate)
  std::string namespace_name = "default";  // the pod's namespace, or the context's
};

// The service account's files in a pod (client-go's rest.InClusterConfig):
// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT name the server, `dir`
// holds token, ca.crt and namespace. `host_env` and `port_env` are those two
// variables' values (empty when unset). nullopt with `error` when something is missing.
inline constexpr const char* k8s_service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
std::optional<k8s_config> k8s_in_cluster_config(const std::string& host_env, const std::string& port_env,
                                                const std::string& dir, std::string& error);
// The same, from the process's environment and k8s_service_account_dir.
std::optional<k8s_config> k8s_in_cluster_config(std::string& error);

// A kubeconfig file: its current-context (or `context` when not empty), that
// context's cluster (server, certificate-authority or -data, tls-server-name,
// insecure-skip-tls-verify), user (token, tokenFile, client-certificate(-data)
// and client-key(-data)) and namespace. Relative file names are relative to the
// kubeconfig's folder, as kubectl reads them. Every error found is in `errors`
// as FILE:LINE:COL, and the result is nullopt. exec and auth-provider users
// are refused: vane-control runs no credential plugins.
std::optional<k8s_config> k8s_kubeconfig(const std::string& file, const std::string& context,
                                         std::vector<config_error>& errors);

// The token to send now: `config.token`, or the token file's content (surrounding
// white space removed), read when first asked and again once `reread` has passed
// since the last read, as client-go does for a service account's token, which
// the kubelet rotates. A file that cannot be read keeps the last token and says
// why in last_error(). Not thread-safe: one client, one thread.
class k8s_token_source {
 public:
  using clock = std::chrono::steady_clock;
  explicit k8s_token_source(const k8s_config& config, clock::duration reread = std::chrono::minutes(1));
  const std::string& token(clock::time_point now);
  void reread_after(clock::duration d) { reread_ = d; }  // tests: read the file again sooner
  const std::string& last_error() const { return last_error_; }
  std::size_t reads() const { return reads_; }  // successful reads of the file (tests)

 private:
  std::string token_, file_, last_error_;
  clock::duration reread_;
  std::optional<clock::time_point> read_at_;
  std::size_t reads_ = 0;
};

}  // namespace vane::control
