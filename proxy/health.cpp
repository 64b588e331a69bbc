// Active health checks and DNS re-resolution of vane-proxy's clusters, run on
// the control thread. A change of health or of resolved addresses builds a
// new route table (same policy) and posts it to the workers, as Envoy's main
// thread pushes new host sets to its workers.
#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/http_client.hpp"
#include "common/https_client.hpp"
#include "common/log.hpp"
#include "proxy/http2/grpc_health.hpp"
#include "proxy/runtime.hpp"
#include "proxy/tls.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

// One check: connect (and TLS when the cluster speaks it, verified as its
// requests are), GET path, a 2xx status within `timeout` passes.
asio::awaitable<bool> probe(asio::any_io_executor ex, tcp::endpoint endpoint, std::string path, duration timeout,
                            std::shared_ptr<const client_tls> tls, std::string tls_host) {
  http_request_spec request;
  request.target = std::move(path);
  request.host = endpoint_key(endpoint);
  request.user_agent = "vane-health-check";
  request.timeout = timeout;
  request.body_limit = std::uint64_t{64} * 1024;
  http_result r;
  if (tls) {
    tls_prepare prepare = [tls, tls_host](SSL* ssl) { tls->prepare(ssl, tls_host); };
    r = co_await https_fetch(ex, endpoint, tls->context(), prepare, request);
  } else {
    r = co_await http_fetch(ex, endpoint, request);
  }
  co_return r.status / 100 == 2;
}

std::string signature(const cluster_target& c, const health_check_config& hc) {
  std::string s = hc.path + "|" + (hc.grpc_service ? "grpc:" + *hc.grpc_service : "") + "|" +
                  std::to_string(hc.interval.count()) + "|" + std::to_string(hc.unhealthy) + "|" +
                  std::to_string(hc.healthy);
  for (const auto& e : c.endpoints) s += "|" + endpoint_key(e);
  return s;
}

}  // namespace

void runtime::start_health_checks() {
  if (draining_) return;
  // A cluster a reload removed: its checks end (their epoch is gone) and its state is forgotten.
  auto in_table = [&](const std::string& name) {
    return std::any_of(table_->clusters.begin(), table_->clusters.end(),
                       [&](const cluster_target& c) { return c.name == name; });
  };
  std::erase_if(health_checks_, [&](const auto& kv) { return !in_table(kv.first); });
  std::erase_if(health_, [&](const auto& kv) { return !in_table(kv.first); });
  for (const auto& c : table_->clusters) {
    const cluster_config* cfg = effective_.find_cluster(c.name);
    if (!cfg || !cfg->health_check) {
      health_checks_.erase(c.name);
      health_.erase(c.name);  // (the table ignores it already: nothing checks those endpoints any more)
      continue;
    }
    std::string sig = signature(c, *cfg->health_check);
    auto it = health_checks_.find(c.name);
    if (it != health_checks_.end() && it->second.first == sig) continue;  // already checked as configured
    std::uint64_t epoch = ++health_epoch_;
    health_checks_[c.name] = {sig, epoch};
    // Endpoints that stay keep their state (as Envoy's hosts do); those gone are forgotten, so that an
    // address that comes back later starts healthy, as a new one does.
    if (auto h = health_.find(c.name); h != health_.end()) {
      std::erase_if(h->second, [&](const auto& kv) {
        return std::none_of(c.endpoints.begin(), c.endpoints.end(),
                            [&](const tcp::endpoint& e) { return endpoint_key(e) == kv.first; });
      });
    }
    for (const auto& ep : c.endpoints)
      asio::co_spawn(ctx_, check_endpoint(c.name, ep, *cfg->health_check, epoch), asio::detached);
  }
}

asio::awaitable<void> runtime::check_endpoint(std::string cluster, tcp::endpoint endpoint, health_check_config hc,
                                              std::uint64_t epoch) {
  const std::string key = endpoint_key(endpoint);
  auto current = [&] {
    auto it = health_checks_.find(cluster);
    return !draining_ && it != health_checks_.end() && it->second.second == epoch;
  };
  std::uint32_t passes = 0, failures = 0;
  asio::steady_timer timer(ctx_);
  while (current()) {
    std::shared_ptr<const client_tls> tls;
    std::string tls_host;
    for (const auto& c : table_->clusters)
      if (c.name == cluster) {
        tls = c.tls;
        tls_host = c.tls_host;
      }
    asio::any_io_executor ex = ctx_.get_executor();
    bool ok = false;
    if (hc.grpc_service) {
      const std::string service = *hc.grpc_service;
      const std::string authority = endpoint_key(endpoint);
      ok = co_await grpc_health_probe(ex, endpoint, service, authority, hc.interval, tls, tls_host);
    } else {
      ok = co_await probe(ex, endpoint, hc.path, hc.interval, tls, tls_host);
    }
    if (!current()) co_return;
    auto [it, inserted] = health_[cluster].try_emplace(key, true);  // endpoints start healthy
    bool& healthy = it->second;
    bool changed = false;
    if (ok) {
      failures = 0;
      if (!healthy && ++passes >= hc.healthy) changed = true;
    } else {
      passes = 0;
      if (healthy && ++failures >= hc.unhealthy) changed = true;
    }
    if (changed) {
      healthy = !healthy;
      passes = failures = 0;
      bool now_healthy = healthy;
      std::string why = "health change";
      co_await rebuild(nullptr, why);
      // Logged once every worker routes by it.
      log::info("cluster {}: endpoint {} is now {} (health check {})", cluster, key,
                now_healthy ? "healthy" : "unhealthy", hc.path);
    }
    timer.expires_after(hc.interval);
    co_await timer.async_wait(nothrow);
  }
}

asio::awaitable<lookup_map> runtime::look_up_new_names(const proxy_config& next) {
  lookup_map out;
  tcp::resolver resolver(ctx_);
  for (const auto& c : next.clusters) {
    if (const cluster_target* t = table_->find_cluster(c.name); t && t->configured == c.endpoints) continue;
    for (const auto& e : c.endpoints) {
      boost::system::error_code ec;
      asio::ip::make_address(e.host, ec);
      if (!ec || out.contains(e.to_string())) continue;
      auto [rec, results] = co_await resolver.async_resolve(e.host, std::to_string(e.port), nothrow);
      name_lookup& l = out[e.to_string()];
      for (const auto& r : results) l.addresses.push_back(r.endpoint());
      if (rec) {
        l.error = rec.message();
        co_return out;  // the reload is refused at this name: no need to wait for the others
      }
    }
  }
  co_return out;
}

asio::awaitable<void> runtime::refresh_dns() {
  tcp::resolver resolver(ctx_);
  asio::steady_timer timer(ctx_);
  std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> due;
  while (!draining_) {
    auto now = std::chrono::steady_clock::now();
    auto next = now + std::chrono::seconds(60);
    resolved_map fresh;
    // A copy: a reload or a traffic PUT replaces effective_ while a lookup below is awaited.
    const std::vector<cluster_config> clusters = effective_.clusters;
    for (const auto& c : clusters) {
      bool named = false;
      for (const auto& e : c.endpoints) {
        boost::system::error_code ec;
        asio::ip::make_address(e.host, ec);
        named = named || ec;
      }
      if (!named) continue;
      auto& when = due[c.name];
      if (when > now) {
        next = std::min(next, when);
        continue;
      }
      when = now + c.dns_refresh_rate;
      next = std::min(next, when);
      std::vector<tcp::endpoint> addresses;
      bool failed = false;
      for (const auto& e : c.endpoints) {
        auto [ec, results] = co_await resolver.async_resolve(e.host, std::to_string(e.port), nothrow);
        if (ec) {
          // Keep the last good addresses: a DNS hiccup must not empty a cluster.
          log::warn("cluster {}: cannot resolve {}: {}; keeping the last addresses", c.name, e.to_string(),
                    ec.message());
          failed = true;
          break;
        }
        for (const auto& r : results) addresses.push_back(r.endpoint());
      }
      if (failed) continue;
      const cluster_target* current = table_->find_cluster(c.name);
      if (current && current->endpoints != addresses) fresh[c.name] = std::move(addresses);
    }
    // A reload during the lookups may have given a cluster other endpoints,
    // resolved with it: what was looked up here for the old ones is stale.
    std::erase_if(fresh, [&](const auto& entry) {
      const auto then =
          std::find_if(clusters.begin(), clusters.end(), [&](const auto& c) { return c.name == entry.first; });
      const cluster_config* now = effective_.find_cluster(entry.first);
      return then == clusters.end() || !now || then->endpoints != now->endpoints;
    });
    if (!fresh.empty()) {
      std::string why = "DNS change";
      co_await rebuild(&fresh, why);
      for (const auto& [name, addresses] : fresh) {  // once every worker routes by them
        std::string list;
        for (const auto& a : addresses) list += (list.empty() ? "" : ", ") + endpoint_key(a);
        log::info("cluster {}: DNS now gives {}", name, list.empty() ? "no address" : list);
      }
    }
    timer.expires_at(next);
    co_await timer.async_wait(nothrow);
  }
}

}  // namespace vane::proxy
