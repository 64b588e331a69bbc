#include "control/k8s_endpoints.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json.hpp>
#include <set>

#include "common/log.hpp"
#include "control/k8s_informer.hpp"
#include "control/parse.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

bool dns_label(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::optional<k8s_proxy_ref> parse_k8s_proxy(std::string_view text) {
  if (!text.starts_with("k8s:")) return std::nullopt;
  text.remove_prefix(4);
  auto slash = text.find('/');
  auto colon = text.rfind(':');
  if (slash == std::string_view::npos || colon == std::string_view::npos || colon < slash) return std::nullopt;
  k8s_proxy_ref r{std::string(text.substr(0, slash)), std::string(text.substr(slash + 1, colon - slash - 1)),
                  std::string(text.substr(colon + 1))};
  if (!dns_label(r.ns) || !dns_label(r.service)) return std::nullopt;
  if (all_digits(r.port)) {
    if (r.port.size() > 5 || std::stoul(r.port) == 0 || std::stoul(r.port) > 65535) return std::nullopt;
  } else if (!dns_label(r.port) || r.port.size() > 15) {
    return std::nullopt;
  }
  return r;
}

endpoint_urls ready_endpoint_urls(const std::vector<json::object>& slices, const k8s_proxy_ref& ref) {
  endpoint_urls out;
  std::set<std::string> seen;
  const bool numeric = all_digits(ref.port);
  for (const auto& slice : slices) {
    const std::string name = k8s_key(slice);
    std::string port = ref.port;
    if (!numeric) {
      port.clear();
      if (const auto* ports = member_array(slice, "ports")) {
        for (const auto& p : *ports) {
          const auto* po = p.if_object();
          auto n = po ? member_string(*po, "name") : std::nullopt;
          const auto* number = po ? po->if_contains("port") : nullptr;
          auto value = number ? as_count(*number) : std::nullopt;
          if (n && *n == ref.port && value) port = std::to_string(*value);
        }
      }
      if (port.empty()) {
        out.problems.push_back(fmt::format("EndpointSlice {} has no port named {}", name, ref.port));
        continue;
      }
    }
    auto type = member_string(slice, "addressType");
    const bool v6 = type && *type == "IPv6";
    const auto* endpoints = member_array(slice, "endpoints");
    if (!endpoints) continue;  // a slice with no endpoints (a Service with no pods)
    for (const auto& e : *endpoints) {
      const auto* eo = e.if_object();
      const auto* addresses = eo ? member_array(*eo, "addresses") : nullptr;
      if (!addresses || addresses->empty() || !addresses->front().is_string()) {
        out.problems.push_back(fmt::format("EndpointSlice {}: an endpoint without an address", name));
        continue;
      }
      // Unset means ready (the API's rule for consumers); only an explicit false leaves it out.
      const auto* conditions = member_object(*eo, "conditions");
      auto ready = conditions ? member_bool(*conditions, "ready") : std::nullopt;
      if (ready && !*ready) {
        ++out.not_ready;
        continue;
      }
      // The addresses of one endpoint are fungible: the first is used.
      std::string_view address = addresses->front().get_string();
      const bool brackets = v6 || address.find(':') != std::string_view::npos;
      std::string url =
          brackets ? fmt::format("http://[{}]:{}", address, port) : fmt::format("http://{}:{}", address, port);
      if (seen.insert(url).second) out.urls.push_back(std::move(url));
    }
  }
  if (out.urls.empty() && out.problems.empty())
    out.problems.push_back(fmt::format("{}: no ready endpoint{}", ref.text(),
                                       out.not_ready ? fmt::format(" ({} not ready)", out.not_ready) : ""));
  return out;
}

k8s_endpoints::k8s_endpoints(std::shared_ptr<k8s_client> client) : client_(std::move(client)) {}

k8s_endpoints::~k8s_endpoints() = default;

void k8s_endpoints::watch(const k8s_proxy_ref& ref) {
  if (informers_.contains(ref.key())) return;
  k8s_informer_options o;
  o.resource = k8s_api::endpointslices;
  o.namespace_name = ref.ns;
  o.label_selector = "kubernetes.io/service-name=" + ref.service;
  auto informer = std::make_shared<k8s_informer>(client_, o, [](k8s_change, const json::object&) {});
  informers_[ref.key()] = informer;
  log::info("fleet: watching the EndpointSlices of Service {}", ref.key());
  auto loop = [informer, key = ref.key()]() -> asio::awaitable<void> {
    try {
      co_await informer->run();
    } catch (const std::exception& e) {
      log::error("fleet: the EndpointSlices watch of {} ended by an exception: {}", key, e.what());
    }
  };
  asio::co_spawn(client_->executor(), std::move(loop), asio::detached);  // the callable, kept alive by co_spawn
}

endpoint_urls k8s_endpoints::urls(const k8s_proxy_ref& ref) const {
  auto it = informers_.find(ref.key());
  if (it == informers_.end()) return endpoint_urls{{}, {ref.text() + ": not watched"}, 0};
  auto stats = it->second->stats();
  if (!stats.synced)
    return endpoint_urls{{},
                         {fmt::format("{}: EndpointSlices not listed yet{}", ref.text(),
                                      stats.last_error.empty() ? "" : " (" + stats.last_error + ")")},
                         0};
  return ready_endpoint_urls(it->second->objects(), ref);
}

}  // namespace vane::control
