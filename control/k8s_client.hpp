#pragma once
// A small Kubernetes API client on the project's HTTPS client
// (common/https_client.hpp): one request per connection, a bearer token or a
// client certificate, the server's certificate checked against the
// configured CA. Calls never throw for the server's sake: an answer is an
// http_result (status 0 and `error` when there was none). What the calls
// mean (list, watch, update with retry on conflict, patches, /status) is
// the Kubernetes API's: https://kubernetes.io/docs/reference/using-api/api-concepts/
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/http_client.hpp"
#include "common/https_client.hpp"
#include "control/k8s_config.hpp"

namespace boost::asio::ssl {
class context;
}

namespace vane::control {

// A resource type as the API's paths name it.
struct k8s_resource {
  std::string group;    // "" for the core group
  std::string version;  // "v1", "v1beta1"
  std::string plural;   // "deployments", "canaries"
  // /api/v1/namespaces/NS/PLURAL[/NAME[/SUBRESOURCE]], or /apis/GROUP/VERSION/...;
  // without the namespace part when `ns` is empty (every namespace, for a list or watch).
  std::string path(std::string_view ns, std::string_view name = {}, std::string_view subresource = {}) const;
};

// The resources vane-control reads and writes, named once for the controller and its tests.
namespace k8s_api {
inline const k8s_resource canaries{"flagger.app", "v1beta1", "canaries"};
inline const k8s_resource metrictemplates{"flagger.app", "v1beta1", "metrictemplates"};
inline const k8s_resource alertproviders{"flagger.app", "v1beta1", "alertproviders"};
inline const k8s_resource deployments{"apps", "v1", "deployments"};
inline const k8s_resource services{"", "v1", "services"};
inline const k8s_resource configmaps{"", "v1", "configmaps"};
inline const k8s_resource secrets{"", "v1", "secrets"};
inline const k8s_resource hpas{"autoscaling", "v2", "horizontalpodautoscalers"};
inline const k8s_resource events{"", "v1", "events"};
inline const k8s_resource leases{"coordination.k8s.io", "v1", "leases"};
inline const k8s_resource endpointslices{"discovery.k8s.io", "v1", "endpointslices"};
}  // namespace k8s_api

// The media types of PATCH (https://kubernetes.io/docs/reference/using-api/api-concepts/#patch-and-apply).
inline constexpr const char* k8s_merge_patch = "application/merge-patch+json";  // RFC 7386
inline constexpr const char* k8s_json_patch = "application/json-patch+json";    // RFC 6902

// "NAMESPACE/NAME" (or "NAME" for a cluster-scoped object), the key objects are kept by.
std::string k8s_key(const boost::json::object& object);
// metadata.resourceVersion, "" when absent.
std::string k8s_resource_version(const boost::json::object& object);
// What an error answer says: a Status object's message (and reason), else the start of the body.
std::string k8s_answer_text(const http_result& answer);

class k8s_client {
 public:
  // The TLS context from the config's CA and client certificate; null and `error` when they do not load.
  static std::shared_ptr<k8s_client> make(boost::asio::any_io_executor ex, k8s_config config, std::string& error);
  ~k8s_client();
  k8s_client(const k8s_client&) = delete;
  k8s_client& operator=(const k8s_client&) = delete;

  // METHOD target (a path and query under the server's base path), with a
  // body of `content_type` (application/json when empty) when not empty.
  boost::asio::awaitable<http_result> call(std::string method, std::string target, std::string body = {},
                                           std::string content_type = {});
  // A GET whose answer lasts (a watch): see https_stream.
  boost::asio::awaitable<http_result> stream(std::string target, duration idle_timeout, http_body_sink on_data);

  const k8s_config& config() const { return config_; }
  k8s_token_source& tokens() { return tokens_; }
  boost::asio::any_io_executor executor() const { return ex_; }
  duration timeout = std::chrono::seconds(30);  // of a call, and of a stream until its answer's head

 private:
  k8s_client(boost::asio::any_io_executor ex, k8s_config config);
  boost::asio::awaitable<http_result> send(http_request_spec spec, bool streamed, duration idle_timeout,
                                           http_body_sink on_data);

  boost::asio::any_io_executor ex_;
  k8s_config config_;
  k8s_token_source tokens_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
};

// A read-modify-write with optimistic concurrency: GET the object, let
// `change` edit it (false: nothing to write), PUT it with the resourceVersion
// that was read; on 409 Conflict read it again and apply the change again, at
// most `attempts` times in all (client-go's retry.RetryOnConflict, 5 steps).
// `target` is the object's path (or its /status). The answer is the last
// call's; `tries` says how many PUTs were sent.
struct k8s_update_result {
  http_result answer;
  int tries = 0;
  bool written = false;
};
boost::asio::awaitable<k8s_update_result> k8s_update(k8s_client& client, std::string target,
                                                     std::function<bool(boost::json::object&)> change,
                                                     int attempts = 5);

}  // namespace vane::control
