#pragma once
// The proxies of a Canary from the Kubernetes API: `k8s:NAMESPACE/SERVICE:PORT`
// in spec.proxies names the ready endpoints of the Service's EndpointSlices
// (discovery.k8s.io/v1, label kubernetes.io/service-name=SERVICE), kept by an
// informer (list+watch) per Service, so that a new pod is among the proxies
// at the next tick. PORT is a number, or the name of one of the slices' ports
// (the Service port's name). An endpoint is ready when conditions.ready is
// true or unset (https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/#conditions).
#include <boost/json/object.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vane::control {

class k8s_client;
class k8s_informer;

struct k8s_proxy_ref {
  std::string ns, service, port;
  std::string key() const { return ns + "/" + service; }
  std::string text() const { return "k8s:" + ns + "/" + service + ":" + port; }
};
// "k8s:NAMESPACE/SERVICE:PORT"; nullopt when it is not (names are DNS labels,
// PORT a number 1-65535 or a port name).
std::optional<k8s_proxy_ref> parse_k8s_proxy(std::string_view text);

struct endpoint_urls {
  std::vector<std::string> urls;      // http://ADDRESS:PORT of each ready endpoint, each once
  std::vector<std::string> problems;  // why some (or all) are missing
  std::size_t not_ready = 0;          // endpoints left out because conditions.ready is false
};
// The admin URLs of the ready endpoints of these EndpointSlices. Read without
// throwing: a slice or endpoint that cannot be read is a problem, the others count.
endpoint_urls ready_endpoint_urls(const std::vector<boost::json::object>& slices, const k8s_proxy_ref& ref);

class k8s_endpoints {
 public:
  explicit k8s_endpoints(std::shared_ptr<k8s_client> client);
  ~k8s_endpoints();
  k8s_endpoints(const k8s_endpoints&) = delete;
  k8s_endpoints& operator=(const k8s_endpoints&) = delete;

  // Starts the informer of the Service's EndpointSlices on the client's
  // executor, unless it runs already. Call from that executor.
  void watch(const k8s_proxy_ref& ref);
  // The ready endpoints now (watch() first; before its first list: none, and why).
  endpoint_urls urls(const k8s_proxy_ref& ref) const;

 private:
  std::shared_ptr<k8s_client> client_;
  std::map<std::string, std::shared_ptr<k8s_informer>> informers_;  // by NAMESPACE/SERVICE
};

}  // namespace vane::control
