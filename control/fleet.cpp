#include "control/fleet.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <memory>

#include "common/http_client.hpp"
#include "common/log.hpp"
#include "control/k8s_endpoints.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

// Runs f(0) .. f(n-1) concurrently and resumes when all are done (one that throws is logged and counted
// as done: the caller never waits for ever).
template <class F>
asio::awaitable<void> for_all(asio::any_io_executor ex, std::size_t n, F f) {
  if (n == 0) co_return;
  auto remaining = std::make_shared<std::size_t>(n);
  auto done = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
  for (std::size_t i = 0; i < n; ++i) {
    auto task = [f, i, remaining, done]() -> asio::awaitable<void> {
      try {
        co_await f(i);
      } catch (const std::exception& e) {
        log::error("a call to a proxy ended by an exception: {}", e.what());
      }
      if (--*remaining == 0) done->cancel();
    };
    asio::co_spawn(ex, std::move(task), asio::detached);
  }
  // A task may have ended already, inside co_spawn (it starts at once on this thread): a cancel with no
  // wait pending is lost, so wait only for those still running.
  if (*remaining > 0) co_await done->async_wait(nothrow);
}

}  // namespace

asio::awaitable<std::vector<std::string>> fleet_client::urls(std::vector<std::string> proxies,
                                                             std::vector<std::string>& problems) {
  std::vector<std::string> out;
  for (const auto& p : proxies) {
    if (p.starts_with("k8s:")) {
      auto ref = parse_k8s_proxy(p);
      if (!ref) {
        problems.push_back(fmt::format("{} is not k8s:NAMESPACE/SERVICE:PORT", p));
      } else if (!endpoints) {
        problems.push_back(fmt::format("{}: vane-control has no Kubernetes API credentials", p));
      } else {
        endpoints->watch(*ref);  // started when the documents were loaded; here in case it was not
        endpoint_urls found = endpoints->urls(*ref);
        for (auto& u : found.urls) out.push_back(std::move(u));
        for (auto& why : found.problems) problems.push_back(std::move(why));
      }
      continue;
    }
    if (!p.starts_with("dns:")) {
      out.push_back(p);
      continue;
    }
    // dns:NAME:PORT: every address of the name (a headless Service's pods).
    std::string rest = p.substr(4);
    auto colon = rest.rfind(':');
    std::string name = rest.substr(0, colon), port = colon == std::string::npos ? "9901" : rest.substr(colon + 1);
    tcp::resolver resolver(ex_);
    auto [ec, results] = co_await resolver.async_resolve(name, port, nothrow);
    if (ec) {
      problems.push_back(fmt::format("cannot resolve {}: {}", name, ec.message()));
      continue;
    }
    for (const auto& r : results) {
      auto ep = r.endpoint();
      out.push_back(fmt::format("http://{}:{}",
                                ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string(),
                                ep.port()));
    }
  }
  co_return out;
}

asio::awaitable<std::vector<std::string>> fleet_client::push(std::vector<std::string> urls, std::string route,
                                                             json::object traffic) {
  auto failures = std::make_shared<std::vector<std::string>>(urls.size());
  auto body = std::make_shared<const std::string>(json::serialize(traffic));
  std::string target = "/routes/" + route + "/traffic";
  auto put = [ex = ex_, urls, body, target, failures, token = token_](std::size_t i) -> asio::awaitable<void> {
    auto url = parse_http_url(urls[i]);
    if (!url) {
      (*failures)[i] = "not an http:// URL";
      co_return;
    }
    std::string method = "PUT", b = *body;
    std::vector<std::pair<std::string, std::string>> headers;
    if (!token.empty()) headers.emplace_back("authorization", "Bearer " + token);
    duration timeout = std::chrono::seconds(5);
    http_result r = co_await http_call(ex, *url, method, target, b, timeout, headers);
    if (r.status != 200)
      (*failures)[i] =
          fmt::format("PUT {} -> {}", target, r.status ? fmt::format("{} {}", r.status, excerpt(r.body)) : r.error);
  };
  co_await for_all(ex_, urls.size(), put);
  co_return std::move(*failures);
}

asio::awaitable<std::vector<parsed<json::object>>> fleet_client::get_all(std::vector<std::string> urls,
                                                                         std::string target, duration timeout) {
  auto results = std::make_shared<std::vector<parsed<json::object>>>(urls.size());
  auto get = [ex = ex_, urls, target, timeout, results, token = token_](std::size_t i) -> asio::awaitable<void> {
    auto& out = (*results)[i];
    auto url = parse_http_url(urls[i]);
    if (!url) {
      out = parsed<json::object>::fail("not an http:// URL");
      co_return;
    }
    std::string method = "GET", body;
    std::vector<std::pair<std::string, std::string>> headers;
    if (!token.empty()) headers.emplace_back("authorization", "Bearer " + token);
    http_result r = co_await http_call(ex, *url, method, target, body, timeout, headers);
    if (r.status != 200) {
      out = parsed<json::object>::fail(r.status ? fmt::format("GET {} -> {} {}", target, r.status, excerpt(r.body))
                                                : fmt::format("GET {}: {}", target, r.error));
      co_return;
    }
    out = parse_json_object(r.body);
    if (!out) out.why = fmt::format("GET {}: {}", target, out.why);
  };
  co_await for_all(ex_, urls.size(), get);
  co_return std::move(*results);
}

parsed<bool> cluster_healthy(const json::object& answer, std::string_view cluster) {
  const auto* clusters = answer.if_contains("clusters");
  if (!clusters) return parsed<bool>::fail("no \"clusters\" in the /clusters answer");
  if (!clusters->is_array())
    return parsed<bool>::fail(fmt::format("\"clusters\" is {}, not an array", kind_of(*clusters)));
  for (const auto& c : clusters->get_array()) {
    const auto* o = c.if_object();
    if (!o) return parsed<bool>::fail(fmt::format("a cluster entry is {}, not an object", kind_of(c)));
    auto name = member_string(*o, "name");
    if (!name) return parsed<bool>::fail("a cluster entry without a \"name\" string");
    if (*name != cluster) continue;
    const auto* healthy = o->if_contains("healthy_endpoints");
    auto n = healthy ? as_count(*healthy) : std::nullopt;
    if (!n)
      return parsed<bool>::fail(fmt::format("cluster {}: healthy_endpoints is {}, not a count", cluster,
                                            healthy ? kind_of(*healthy) : "missing"));
    return parsed<bool>{*n > 0, {}};
  }
  return parsed<bool>{false, {}};  // not on this proxy: not healthy
}

}  // namespace vane::control
