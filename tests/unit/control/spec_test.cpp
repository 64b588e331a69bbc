// vane-control's documents: a Flagger Canary loads after adding route and
// proxies; Flagger-only fields are reported as ignored; a bad document is
// refused with FILE:LINE:COL and the others of the file still load.
#include "control/spec.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

using namespace vane::control;
namespace json = boost::json;

namespace {
std::string all_errors(const documents& d) {
  std::string s;
  for (const auto& e : d.errors) s += e.to_string() + "\n";
  return s;
}
}  // namespace

TEST(CanarySpec, AFlaggerCanaryLoadsWithRouteAndProxies) {
  documents d;
  parse_documents(R"(apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  progressDeadlineSeconds: 60
  revision: "6.1.0"
  route: podinfo
  proxies: [http://127.0.0.1:9901, dns:vane-proxy.test.svc:9901]
  analysis:
    interval: 30s
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    stepWeights: [1, 5, {weight: 10, interval: 5m}, 50]
    match:
      - headers: {x-canary: {exact: insider}}
      - headers: {cookie: {regex: "^(.*?;)?(canary=always)(;.*)?$"}}
    sessionAffinity: {cookieName: vane-canary, maxAge: 3600}
    metrics:
      - name: request-success-rate
        thresholdRange: {min: 99}
        interval: 1m
      - name: request-duration
        thresholdRange: {max: 500}
      - name: error-rate
        templateRef: {name: error-rate, namespace: test}
        thresholdRange: {max: 1}
    webhooks:
      - {name: acceptance-test, type: pre-rollout, url: http://127.0.0.1:8081/, timeout: 30s, metadata: {cmd: "curl x"}}
---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: error-rate, namespace: test}
spec:
  provider: {type: prometheus, address: http://127.0.0.1:9090}
  query: sum(rate(vane_requests_total{code=~"5.."}[{{ interval }}]))
)",
                  "c.yaml", d);
  ASSERT_EQ(d.errors.size(), 0u) << all_errors(d);
  ASSERT_EQ(d.canaries.size(), 1u);
  const auto& c = d.canaries[0];
  EXPECT_EQ(c.id(), "podinfo.test");
  EXPECT_EQ(c.revision, "6.1.0");
  EXPECT_EQ(c.primary, "podinfo-primary");  // Flagger's names from targetRef
  EXPECT_EQ(c.canary, "podinfo-canary");
  EXPECT_EQ(c.proxies.size(), 2u);
  EXPECT_EQ(c.analysis.interval, std::chrono::seconds(30));
  EXPECT_EQ(c.analysis.step_weights.size(), 4u);
  EXPECT_EQ(c.analysis.step_weights[2].interval, std::chrono::minutes(5));
  EXPECT_EQ(
      json::serialize(c.analysis.match),
      R"([{"headers":{"x-canary":{"exact":"insider"}}},{"headers":{"cookie":{"regex":"^(.*?;)?(canary=always)(;.*)?$"}}}])");
  EXPECT_EQ(c.analysis.affinity_cookie, "vane-canary");
  EXPECT_EQ(c.analysis.affinity_max_age, std::chrono::hours(1));
  ASSERT_EQ(c.analysis.metrics.size(), 3u);
  EXPECT_TRUE(c.analysis.metrics[0].builtin());
  EXPECT_EQ(c.analysis.metrics[0].min, 99);
  EXPECT_FALSE(c.analysis.metrics[2].builtin());
  EXPECT_EQ(c.analysis.webhooks[0].metadata.at("cmd"), "curl x");
  ASSERT_EQ(d.templates.size(), 1u);
  EXPECT_EQ(d.templates[0].provider_address, "http://127.0.0.1:9090");
  // Flagger fields vane has no use for: reported, once each.
  std::string ignored;
  for (const auto& i : d.ignored) ignored += i + "\n";
  EXPECT_NE(ignored.find("'spec.service'"), std::string::npos) << ignored;
  EXPECT_NE(ignored.find("'spec.progressDeadlineSeconds'"), std::string::npos) << ignored;
  EXPECT_NE(ignored.find("'targetRef.kind'"), std::string::npos) << ignored;
}

TEST(CanarySpec, ABadDocumentIsRefusedAloneWithItsPosition) {
  documents d;
  parse_documents(R"(apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: good}
spec:
  route: good
  proxies: [http://127.0.0.1:9901]
  analysis: {stepWeight: 10}
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: bad}
spec:
  route: bad
  proxies: [ftp://nowhere]
  analysis: {stepWeight: 10, colour: blue}
)",
                  "c.yaml", d);
  ASSERT_EQ(d.canaries.size(), 1u);
  EXPECT_EQ(d.canaries[0].id(), "good.default");
  std::string errors = all_errors(d);
  EXPECT_NE(errors.find("c.yaml:14:13: spec.proxies: 'ftp://nowhere' is neither"), std::string::npos) << errors;
  EXPECT_NE(errors.find("c.yaml:15:30: analysis: unknown key 'colour'"), std::string::npos) << errors;
}

TEST(CanarySpec, MistakesAreNamed) {
  documents d;
  parse_documents(R"(apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: x}
spec:
  route: x
  proxies: [http://127.0.0.1:9901]
  analysis:
    interval: 0s
    stepWeights: [10, 5]
    metrics: [{name: latency-p42}]
    webhooks: [{name: w, type: sometimes, url: http://a/}]
    match: [{headers: {x: {regexp: "a"}}}]
)",
                  "c.yaml", d);
  EXPECT_TRUE(d.canaries.empty());
  std::string errors = all_errors(d);
  EXPECT_NE(errors.find("analysis.stepWeights must increase"), std::string::npos) << errors;
  EXPECT_NE(errors.find("metric 'latency-p42': not a builtin"), std::string::npos) << errors;
  EXPECT_NE(errors.find("webhook.type 'sometimes' is not one of Flagger's"), std::string::npos) << errors;
  EXPECT_NE(errors.find("unknown matcher 'regexp'"), std::string::npos) << errors;
  EXPECT_NE(errors.find("analysis.interval must be at least 100ms"), std::string::npos) << errors;
}

// URLs the controller could never use are refused where they are written: a proxy URL with no host (its
// tick never ended), a promote URL that is not http:// (each promotion failed without a word).
TEST(CanarySpec, UnusableProxyAndPromoteUrlsAreRefused) {
  documents d;
  parse_documents(R"(apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: x}
spec:
  route: x
  proxies: ["http://:9901"]
  promote: {url: "https://promoter.example/promote"}
  analysis: {interval: 1s, threshold: 2, maxWeight: 50, stepWeight: 10}
)",
                  "c.yaml", d);
  EXPECT_TRUE(d.canaries.empty());
  std::string errors = all_errors(d);
  EXPECT_NE(errors.find("spec.proxies: 'http://:9901' is neither"), std::string::npos) << errors;
  EXPECT_NE(errors.find("promote.url: 'https://promoter.example/promote' is not an http:// URL"), std::string::npos)
      << errors;
}

TEST(CanarySpec, GrpcFailureCodesTakeNamesAndNumbers) {
  const std::string head = R"(apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: x}
spec:
  route: x
  proxies: [http://127.0.0.1:9901]
  analysis:
    stepWeight: 10
)";
  documents d;
  parse_documents(head + "    interval: 1s\n", "a.yaml", d);
  ASSERT_EQ(d.canaries.size(), 1u) << all_errors(d);
  EXPECT_EQ(d.canaries[0].analysis.grpc_failures, default_grpc_failures);
  documents e;
  parse_documents(head + "    grpcFailureCodes: [UNAVAILABLE, internal, 4, resource-exhausted]\n", "b.yaml", e);
  ASSERT_EQ(e.canaries.size(), 1u) << all_errors(e);
  EXPECT_EQ(e.canaries[0].analysis.grpc_failures, (1U << 14) | (1U << 13) | (1U << 4) | (1U << 8));
  documents f;
  parse_documents(head + "    grpcFailureCodes: [UNAVAILABLE, SOMETIMES, 17]\n", "c.yaml", f);
  EXPECT_TRUE(f.canaries.empty());
  const std::string errors = all_errors(f);
  EXPECT_NE(errors.find("c.yaml:9:"), std::string::npos) << errors;
  EXPECT_NE(errors.find("\"SOMETIMES\" is not a gRPC status"), std::string::npos) << errors;
  EXPECT_NE(errors.find("\"17\" is not a gRPC status"), std::string::npos) << errors;
}
