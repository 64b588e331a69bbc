// k8s: proxies (control/k8s_endpoints.hpp): the syntax, and the ready endpoints of EndpointSlices.
#include "control/k8s_endpoints.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

using namespace vane::control;

namespace {

boost::json::object slice(const char* text) { return boost::json::parse(text).as_object(); }

TEST(K8sProxies, Syntax) {
  auto r = parse_k8s_proxy("k8s:shop/fleet:9901");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ns, "shop");
  EXPECT_EQ(r->service, "fleet");
  EXPECT_EQ(r->port, "9901");
  EXPECT_EQ(r->text(), "k8s:shop/fleet:9901");
  EXPECT_TRUE(parse_k8s_proxy("k8s:shop/fleet:vane-admin"));
  for (const char* bad : {"k8s:fleet:9901", "k8s:shop/fleet", "k8s:shop/fleet:", "k8s:/fleet:1", "k8s:shop/:1",
                          "k8s:Shop/fleet:1", "k8s:shop/fleet:0", "k8s:shop/fleet:65536", "k8s:shop/fl_eet:1",
                          "k8s:shop/fleet:a-very-long-port-name", "dns:fleet:9901"})
    EXPECT_FALSE(parse_k8s_proxy(bad)) << bad;
}

TEST(K8sProxies, ReadyEndpointsOfTheSlices) {
  auto ref = *parse_k8s_proxy("k8s:shop/fleet:admin");
  std::vector<boost::json::object> slices{
      slice(R"({"metadata":{"name":"a","namespace":"shop"},"addressType":"IPv4",
                "ports":[{"name":"http","port":8080},{"name":"admin","port":9901}],
                "endpoints":[{"addresses":["10.0.0.1","10.0.0.9"]},
                             {"addresses":["10.0.0.2"],"conditions":{"ready":true}},
                             {"addresses":["10.0.0.3"],"conditions":{"ready":false,"serving":true}},
                             {"addresses":["10.0.0.4"],"conditions":{}}]})"),
      slice(R"({"metadata":{"name":"b","namespace":"shop"},"addressType":"IPv6",
                "ports":[{"name":"admin","port":9902}],"endpoints":[{"addresses":["fd00::1"]}]})"),
      // The same endpoint twice (slices overlap while they are rewritten): once.
      slice(R"({"metadata":{"name":"c","namespace":"shop"},"addressType":"IPv4",
                "ports":[{"name":"admin","port":9901}],"endpoints":[{"addresses":["10.0.0.1"]}]})"),
      // A slice of no pods yet.
      slice(R"({"metadata":{"name":"d","namespace":"shop"},"addressType":"IPv4","ports":null,"endpoints":null})")};
  auto found = ready_endpoint_urls(slices, ref);
  EXPECT_EQ(found.urls, (std::vector<std::string>{"http://10.0.0.1:9901", "http://10.0.0.2:9901",
                                                  "http://10.0.0.4:9901", "http://[fd00::1]:9902"}));
  EXPECT_EQ(found.not_ready, 1U);
  ASSERT_EQ(found.problems.size(), 1U);
  EXPECT_EQ(found.problems[0], "EndpointSlice shop/d has no port named admin");
  // A number is used as it is.
  auto numbered = ready_endpoint_urls({slices[0]}, *parse_k8s_proxy("k8s:shop/fleet:7000"));
  EXPECT_EQ(numbered.urls.front(), "http://10.0.0.1:7000");
  // Nothing ready: why.
  auto none = ready_endpoint_urls({slice(R"({"metadata":{"name":"e","namespace":"shop"},"ports":[{"name":"admin",
      "port":1}],"endpoints":[{"addresses":["10.0.0.3"],"conditions":{"ready":false}},{"addresses":[]},7]})")},
                                  ref);
  EXPECT_TRUE(none.urls.empty());
  EXPECT_EQ(none.not_ready, 1U);
  EXPECT_EQ(none.problems.size(), 2U);  // two endpoints that cannot be read
  EXPECT_EQ(ready_endpoint_urls({}, ref).problems, std::vector<std::string>{"k8s:shop/fleet:admin: no ready endpoint"});
}

}  // namespace
