#pragma once
// The fleet client: vane-control's side of the proxies' admin API. It finds
// the proxies of a canary (admin URLs, every address of a dns: name, or the
// ready endpoints of a k8s: Service, control/k8s_endpoints.hpp), puts
// the desired traffic on all of them concurrently, and reads their answers
// (/stats/latency, /clusters) without throwing: an answer it cannot read is
// why, never an exception.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/units.hpp"
#include "control/parse.hpp"
#include "control/spec.hpp"

namespace vane::control {
class k8s_endpoints;
}

namespace vane::control {

class fleet_client {
 public:
  fleet_client(boost::asio::any_io_executor ex, std::string token) : ex_(std::move(ex)), token_(std::move(token)) {}

  // The admin URLs of the canary's proxies now; names that do not resolve are added to `problems`.
  boost::asio::awaitable<std::vector<std::string>> urls(std::vector<std::string> proxies,
                                                        std::vector<std::string>& problems);
  // PUT /routes/ROUTE/traffic on every proxy concurrently; one "PUT TARGET -> why" per proxy that did not take it
  // (empty: every proxy took it), in the order of `urls`.
  boost::asio::awaitable<std::vector<std::string>> push(std::vector<std::string> urls, std::string route,
                                                        boost::json::object traffic);
  // GET of an admin path on every proxy concurrently: each answer's JSON object, or why not.
  boost::asio::awaitable<std::vector<parsed<boost::json::object>>> get_all(std::vector<std::string> urls,
                                                                           std::string target, duration timeout);

  // Where k8s: proxies are found; null without Kubernetes credentials (each k8s: entry is then a problem).
  std::shared_ptr<k8s_endpoints> endpoints;

 private:
  boost::asio::any_io_executor ex_;
  std::string token_;
};

// Whether `cluster` has a healthy endpoint in a /clusters answer; why when the answer cannot be read.
parsed<bool> cluster_healthy(const boost::json::object& clusters, std::string_view cluster);

}  // namespace vane::control
