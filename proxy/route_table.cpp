#include "proxy/route_table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>

#include "proxy/route_policy.hpp"
#include "proxy/tls.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

std::size_t route_table::find_listener(std::string_view name) const {
  for (std::size_t i = 0; i < listeners.size(); ++i)
    if (listeners[i].name == name) return i;
  return listeners.size();
}

const cluster_target* route_table::find_cluster(std::string_view name) const {
  for (const auto& c : clusters)
    if (c.name == name) return &c;
  return nullptr;
}

const compiled_route* route_table::match(std::size_t listener, std::string_view host_header,
                                         std::string_view path) const {
  for (const auto& r : listeners[listener].routes)
    if (r.host.matches(host_header) && r.path.matches(path)) return &r;
  return nullptr;
}

std::string endpoint_key(const tcp::endpoint& ep) { return host_port{ep.address().to_string(), ep.port()}.to_string(); }

std::shared_ptr<const route_table> build_route_table(const proxy_config& config, std::uint64_t generation,
                                                     const table_inputs& inputs, std::string& error) {
  const route_table* previous = inputs.previous;
  auto table = std::make_shared<route_table>();
  table->generation = generation;
  table->limits = config.limits;

  asio::io_context resolve_ctx;
  tcp::resolver resolver(resolve_ctx);
  for (const auto& c : config.clusters) {
    cluster_target t;
    t.name = c.name;
    t.protocol = c.protocol;
    t.configured = c.endpoints;
    t.connect_timeout = c.connect_timeout;
    t.max_connections = c.max_connections;
    t.max_pending = c.max_pending;
    t.fault = c.fault;
    if (!c.endpoints.empty()) t.authority = c.endpoints.front().to_string();
    if (c.tls) {
      std::string tls_error;
      t.tls = inputs.tls ? inputs.tls->client(*c.tls, tls_error) : client_tls::make(*c.tls, tls_error);
      if (!t.tls) {
        error = fmt::format("cluster {}: tls: {}", c.name, tls_error);
        return nullptr;
      }
      t.tls_host = c.tls->sni.empty() && !c.endpoints.empty() ? c.endpoints.front().host : c.tls->sni;
    }
    bool resolved = false;
    const cluster_target* old = previous ? previous->find_cluster(c.name) : nullptr;
    if (inputs.resolved && old && old->configured == c.endpoints) {
      if (auto it = inputs.resolved->find(c.name); it != inputs.resolved->end()) {
        t.endpoints = it->second;
        resolved = true;
      }
    }
    if (!resolved && old && old->configured == c.endpoints) {
      t.endpoints = old->endpoints;
      resolved = true;
    }
    if (!resolved) {
      for (const auto& ep : c.endpoints) {
        boost::system::error_code ec;
        auto address = asio::ip::make_address(ep.host, ec);
        if (!ec) {
          t.endpoints.emplace_back(address, ep.port);
          continue;
        }
        if (inputs.lookups) {
          if (auto it = inputs.lookups->find(ep.to_string()); it != inputs.lookups->end()) {
            if (!it->second.error.empty() || it->second.addresses.empty()) {
              error = fmt::format("cluster {}: cannot resolve {}: {}", c.name, ep.to_string(),
                                  it->second.error.empty() ? "no address" : it->second.error);
              return nullptr;
            }
            t.endpoints.insert(t.endpoints.end(), it->second.addresses.begin(), it->second.addresses.end());
            continue;
          }
        }
        auto results = resolver.resolve(ep.host, std::to_string(ep.port), ec);
        if (ec || results.empty()) {
          error = fmt::format("cluster {}: cannot resolve {}: {}", c.name, ep.to_string(), ec.message());
          return nullptr;
        }
        for (const auto& r : results) t.endpoints.push_back(r.endpoint());
      }
    }
    auto healthy = std::make_shared<std::vector<char>>(t.endpoints.size(), 1);
    if (inputs.health && c.health_check) {  // (a cluster whose check was removed: every endpoint healthy)
      if (auto h = inputs.health->find(c.name); h != inputs.health->end()) {
        for (std::size_t i = 0; i < t.endpoints.size(); ++i) {
          auto e = h->second.find(endpoint_key(t.endpoints[i]));
          if (e != h->second.end()) (*healthy)[i] = e->second ? 1 : 0;
        }
      }
    }
    t.healthy = std::move(healthy);
    table->clusters.push_back(std::move(t));
  }

  // A cluster named by a rule or the mirror (the split's: compile_split's).
  auto cluster_index = [&](std::string_view route, const std::string& name) -> std::optional<std::size_t> {
    auto at = config.cluster_index(name);
    if (!at) error = fmt::format("route {}: unknown cluster '{}'", route, name);
    return at;
  };

  for (const auto& l : config.listeners) {
    compiled_listener cl;
    cl.name = l.name;
    cl.address = l.address;
    cl.trust_forwarded = l.trust_forwarded;
    cl.http1 = l.http1;
    cl.h2 = l.h2;
    if (l.tls) {
      std::string tls_error;
      cl.tls = inputs.tls ? inputs.tls->server(*l.tls, tls_error) : server_tls::make(*l.tls, tls_error);
      if (!cl.tls) {
        error = fmt::format("listener {}: tls: {}", l.name, tls_error);
        return nullptr;
      }
    }
    for (const auto& r : l.routes) {
      compiled_route cr;
      cr.name = r.name;
      cr.index = table->route_count++;
      cr.host = host_matcher(r.host);
      switch (r.path_kind) {
        case path_match_kind::any:
          break;
        case path_match_kind::prefix:
          cr.path = path_matcher::prefix(r.path);
          break;
        case path_match_kind::exact:
          cr.path = path_matcher::exact(r.path);
          break;
        case path_match_kind::regex:
          cr.path = path_matcher::regex(r.path);
          break;
      }
      compiled_split split = compile_split(r.split, config);
      if (!split.errors.empty()) {
        error = fmt::format("route {}: {}", r.name, split.errors.front().message);
        return nullptr;
      }
      for (const auto& s : split.entries) cr.decision.weights.push_back(s.weight);
      cr.clusters = std::move(split.clusters);
      for (const auto& rule : r.rules) {
        ab_rule compiled;
        auto c = cluster_index(r.name, rule.cluster);
        if (!c) return nullptr;
        auto at = std::find(cr.clusters.begin(), cr.clusters.end(), *c);
        compiled.target = static_cast<std::size_t>(at - cr.clusters.begin());
        if (at == cr.clusters.end()) cr.clusters.push_back(*c);  // a cluster only rules send to
        for (const auto& alt : rule.any) {
          match_alternative a;
          for (const auto& m : alt) {
            std::string matcher_error;
            auto matcher = string_matcher::make(m.kind, m.value, matcher_error);  // as the loader checked it
            if (!matcher) {
              error = fmt::format("route {}: matcher of '{}': {}", r.name, m.name, matcher_error);
              return nullptr;
            }
            a.all.push_back(match_condition{m.source, m.name, std::move(*matcher)});
          }
          compiled.any.push_back(std::move(a));
        }
        cr.decision.rules.push_back(std::move(compiled));
      }
      if (r.hash_on) {
        cr.decision.hash = r.hash_on->kind;
        cr.decision.hash_name = r.hash_on->name;
      }
      cr.fault = r.fault;
      cr.retries = r.retries;
      if (r.mirror) {
        auto c = cluster_index(r.name, r.mirror->cluster);
        if (!c) return nullptr;
        auto at = std::find(cr.clusters.begin(), cr.clusters.end(), *c);
        compiled_mirror m{static_cast<std::size_t>(at - cr.clusters.begin()), r.mirror->per_10k, r.mirror->max_body};
        if (at == cr.clusters.end()) cr.clusters.push_back(*c);  // stats slot for the mirror series
        cr.mirror = m;
      }
      if (r.session_affinity) {
        std::string affinity_error;
        cr.decision.affinity = compile_session_affinity(r.name, *r.session_affinity, r.split, affinity_error);
        if (!cr.decision.affinity) {
          error = fmt::format("route {}: {}", r.name, affinity_error);
          return nullptr;
        }
      }
      // A guard or fallback whose cluster the split does not hold (any more:
      // a traffic PUT changed the split) has no effect until it does.
      auto split_target = [&](const std::string& name) -> std::optional<std::size_t> {
        if (check_guarded_cluster(name, r.split)) return std::nullopt;
        for (std::size_t i = 0; i < r.split.size(); ++i)
          if (r.split[i].cluster == name) return i;
        return std::nullopt;
      };
      if (r.guard) {
        if (auto target = split_target(r.guard->cluster)) {
          compiled_guard g;
          g.target = *target;
          g.grpc_failures = r.guard->grpc_failures;
          g.rule = guard_rule{r.guard->max_error_per_10k, r.guard->min_requests,
                              std::chrono::duration_cast<std::chrono::milliseconds>(r.guard->window)};
          g.state = inputs.guards ? inputs.guards->get(r.name, r.guard->cluster)
                                  : std::make_shared<guard_state>(r.name, r.guard->cluster, 1);
          g.decision = cr.decision.without(*target);
          cr.guard = std::move(g);
        }
      }
      if (r.fallback) {
        auto from = split_target(r.fallback->from);
        auto to = cluster_index(r.name, r.fallback->to);
        if (!to) return nullptr;
        if (from) {
          auto at = std::find(cr.clusters.begin(), cr.clusters.end(), *to);
          compiled_fallback f{*from, static_cast<std::size_t>(at - cr.clusters.begin()), *r.fallback};
          if (at == cr.clusters.end()) cr.clusters.push_back(*to);
          cr.fallback = std::move(f);
        }
      }
      cr.request_headers = r.request_headers;
      cr.response_headers = r.response_headers;
      cr.timeout = r.timeout;
      cl.routes.push_back(std::move(cr));
    }
    table->listeners.push_back(std::move(cl));
  }
  return table;
}

}  // namespace vane::proxy
