// The objects `vane-control --kubernetes` builds and reads (control/k8s_objects.*), alone.
#include "control/k8s_objects.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

using namespace vane::control;
namespace json = boost::json;

namespace {

json::object parse(const char* text) { return json::parse(text).as_object(); }

const char* const target_text = R"({"apiVersion":"apps/v1","kind":"Deployment",
  "metadata":{"name":"podinfo","namespace":"test","labels":{"app":"podinfo"}},
  "spec":{"replicas":3,"strategy":{"type":"RollingUpdate"},"selector":{"matchLabels":{"app":"podinfo"}},
    "template":{"metadata":{"labels":{"app":"podinfo","tier":"web"}},"spec":{
      "containers":[{"name":"c","image":"podinfo:6.1.0",
        "env":[{"name":"A","valueFrom":{"configMapKeyRef":{"name":"cfg","key":"a"}}},
               {"name":"B","valueFrom":{"secretKeyRef":{"name":"sec","key":"b"}}}],
        "envFrom":[{"configMapRef":{"name":"untracked"}}]}],
      "volumes":[{"name":"v","projected":{"sources":[{"configMap":{"name":"cfg"}},{"secret":{"name":"proj"}}]}}]}}}})";

const char* const canary_text = R"({"metadata":{"name":"podinfo","namespace":"test","uid":"u-1"},
  "spec":{"provider":"vane","targetRef":{"name":"podinfo"},"autoscalerRef":{"name":"podinfo-hpa"},
    "service":{"port":9898,"targetPort":"http"},"progressDeadlineSeconds":120}})";

}  // namespace

TEST(K8sObjects, ExtrasOfTheCanary) {
  auto x = k8s::read_extras(parse(canary_text));
  EXPECT_EQ(x.ns, "test");
  EXPECT_EQ(x.target, "podinfo");
  EXPECT_EQ(x.autoscaler, "podinfo-hpa");
  EXPECT_EQ(x.service, "podinfo");
  EXPECT_EQ(x.port, 9898);
  EXPECT_EQ(json::serialize(x.target_port), R"("http")");
  EXPECT_EQ(x.progress_deadline_seconds, 120);
  // Odd shapes read as absent, never throw.
  auto odd = k8s::read_extras(parse(R"({"metadata":{"name":"x"},"spec":{"service":[],"targetRef":7}})"));
  EXPECT_EQ(odd.ns, "default");
  EXPECT_EQ(odd.target, "x");
  EXPECT_EQ(odd.port, 0);
  EXPECT_EQ(odd.progress_deadline_seconds, 600);
}

TEST(K8sObjects, ConfigReferencesAndThePrimaryTemplate) {
  auto target = parse(target_text);
  const auto& tmpl = target.at("spec").at("template").as_object();
  auto refs = k8s::config_refs(tmpl);
  ASSERT_EQ(refs.size(), 4u);
  EXPECT_EQ(refs[0].kind, "ConfigMap");
  EXPECT_EQ(refs[0].name, "cfg");
  EXPECT_EQ(refs[1].name, "untracked");
  EXPECT_EQ(refs[2].kind, "Secret");
  std::vector<k8s::config_ref> tracked{{"ConfigMap", "cfg"}, {"Secret", "sec"}, {"Secret", "proj"}};
  auto p = k8s::primary_template(tmpl, "app", "podinfo", tracked);
  std::string text = json::serialize(p);
  EXPECT_EQ(p.at("metadata").at("labels").at("app").as_string(), "podinfo-primary");
  EXPECT_EQ(p.at("metadata").at("labels").at("tier").as_string(), "web");
  EXPECT_NE(text.find(R"("configMapKeyRef":{"name":"cfg-primary")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("secretKeyRef":{"name":"sec-primary")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"({"configMap":{"name":"cfg-primary"}})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"({"secret":{"name":"proj-primary"}})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("configMapRef":{"name":"untracked"})"), std::string::npos) << text;
}

TEST(K8sObjects, ThePrimaryDeploymentAndItsPromotion) {
  auto target = parse(target_text);
  auto x = k8s::read_extras(parse(canary_text));
  auto d = k8s::primary_deployment(target, x, {});
  EXPECT_EQ(d.at("metadata").at("name").as_string(), "podinfo-primary");
  EXPECT_EQ(d.at("metadata").at("ownerReferences").at(0).at("uid").as_string(), "u-1");
  EXPECT_EQ(d.at("spec").at("replicas").as_int64(), 3);
  EXPECT_EQ(d.at("spec").at("selector").at("matchLabels").at("app").as_string(), "podinfo-primary");
  EXPECT_EQ(d.at("spec").at("strategy").at("type").as_string(), "RollingUpdate");
  // Promotion takes the template and strategy, keeps the primary's replicas, selector and metadata.
  d.at("spec").as_object()["replicas"] = 5;
  target["spec"]
      .as_object()["template"]
      .as_object()["spec"]
      .as_object()["containers"]
      .as_array()[0]
      .as_object()["image"] = "podinfo:6.2.0";
  target["spec"].as_object().erase("strategy");
  k8s::promote_into(d, target, {});
  EXPECT_EQ(d.at("spec").at("replicas").as_int64(), 5);
  EXPECT_FALSE(d.at("spec").as_object().contains("strategy"));
  EXPECT_EQ(d.at("spec").at("template").at("spec").at("containers").at(0).at("image").as_string(), "podinfo:6.2.0");
  EXPECT_EQ(d.at("spec").at("template").at("metadata").at("labels").at("app").as_string(), "podinfo-primary");
  // A target without a replica count gets one primary replica.
  target["spec"].as_object().erase("replicas");
  EXPECT_EQ(k8s::primary_deployment(target, x, {}).at("spec").at("replicas").as_int64(), 1);
}

TEST(K8sObjects, TheSelectorLabelIsAppNameOrAppKubernetesIoName) {
  auto l = k8s::selector_label(parse(R"({"spec":{"selector":{"matchLabels":{"app.kubernetes.io/name":"x"}}}})"));
  ASSERT_TRUE(l);
  EXPECT_EQ(l->first, "app.kubernetes.io/name");
  EXPECT_FALSE(k8s::selector_label(parse(R"({"spec":{"selector":{"matchLabels":{"role":"x"}}}})")));
  EXPECT_FALSE(k8s::selector_label(parse(R"({"spec":"odd"})")));
}

TEST(K8sObjects, TheRevisionChangesWithTheTemplateOrATrackedConfig) {
  auto tmpl = parse(R"({"spec":{"containers":[{"image":"a:1"}]}})");
  auto cfg = parse(R"({"kind":"ConfigMap","metadata":{"name":"cfg"},"data":{"k":"v"}})");
  std::string base = k8s::revision_hash(tmpl, {cfg});
  EXPECT_EQ(base.size(), 16u);
  EXPECT_EQ(base, k8s::revision_hash(tmpl, {cfg}));
  auto cfg2 = cfg;
  cfg2["data"].as_object()["k"] = "w";
  EXPECT_NE(base, k8s::revision_hash(tmpl, {cfg2}));
  auto tmpl2 = parse(R"({"spec":{"containers":[{"image":"a:2"}]}})");
  EXPECT_NE(base, k8s::revision_hash(tmpl2, {cfg}));
  // metadata (a resourceVersion) is not data.
  auto cfg3 = cfg;
  cfg3["metadata"].as_object()["resourceVersion"] = "99";
  EXPECT_EQ(base, k8s::revision_hash(tmpl, {cfg3}));
  auto tracked = k8s::tracked_configs({cfg});
  EXPECT_EQ(tracked.at("configmap/cfg").as_string().size(), 8u);
  EXPECT_FALSE(k8s::tracked(parse(R"({"metadata":{"annotations":{"flagger.app/config-tracking":"disabled"}}})")));
  EXPECT_TRUE(k8s::tracked(parse(R"({"metadata":{"annotations":{"other":"disabled"}}})")));
}

TEST(K8sObjects, RolloutStatusAsKubectlReadsIt) {
  auto r = k8s::rollout_status(parse(R"({"metadata":{"generation":2},"spec":{"replicas":2},
    "status":{"observedGeneration":1,"updatedReplicas":2,"replicas":2,"availableReplicas":2}})"));
  EXPECT_FALSE(r.done);
  EXPECT_NE(r.waiting.find("spec update to be observed"), std::string::npos);
  r = k8s::rollout_status(parse(R"({"metadata":{"generation":2},"spec":{"replicas":2},
    "status":{"observedGeneration":2,"updatedReplicas":1,"replicas":2,"availableReplicas":2}})"));
  EXPECT_EQ(r.waiting, "waiting for rollout to finish: 1 out of 2 new replicas have been updated");
  r = k8s::rollout_status(parse(R"({"metadata":{"generation":2},"spec":{"replicas":2},
    "status":{"observedGeneration":2,"updatedReplicas":2,"replicas":3,"availableReplicas":2}})"));
  EXPECT_EQ(r.waiting, "waiting for rollout to finish: 1 old replicas are pending termination");
  r = k8s::rollout_status(parse(R"({"metadata":{"generation":2},"spec":{"replicas":2},
    "status":{"observedGeneration":2,"updatedReplicas":2,"replicas":2,"availableReplicas":1}})"));
  EXPECT_EQ(r.waiting, "waiting for rollout to finish: 1 of 2 updated replicas are available");
  r = k8s::rollout_status(parse(R"({"metadata":{"generation":2},"spec":{"replicas":2},
    "status":{"observedGeneration":2,"updatedReplicas":2,"replicas":2,"availableReplicas":2}})"));
  EXPECT_TRUE(r.done);
  r = k8s::rollout_status(parse(R"({"metadata":{"generation":3},"spec":{"replicas":2},
    "status":{"observedGeneration":3,"conditions":[{"type":"Progressing","reason":"ProgressDeadlineExceeded"}]}})"));
  EXPECT_TRUE(r.deadline_exceeded);
  EXPECT_FALSE(k8s::rollout_status(parse(R"({"status":"odd"})")).done);
}

TEST(K8sObjects, StatusAsFlaggerWritesItAndReadBack) {
  run_state st;
  st.phase = canary_phase::progressing;
  st.revision = "abc";
  st.weight = 20;
  st.failed_checks = 1;
  st.iterations = 0;
  st.last_transition = "2024-01-01T00:00:00Z";
  st.initialized = true;
  json::object tracked{{"configmap/cfg", "12345678"}};
  auto s = k8s::canary_status(st, "old", tracked, {}, "2024-01-01T00:00:05Z");
  EXPECT_EQ(s.at("phase").as_string(), "Progressing");
  EXPECT_EQ(s.at("canaryWeight").to_number<std::int64_t>(), 20);
  EXPECT_EQ(s.at("lastAppliedSpec").as_string(), "abc");
  EXPECT_EQ(s.at("lastPromotedSpec").as_string(), "old");
  const auto& c = s.at("conditions").at(0);
  EXPECT_EQ(c.at("type").as_string(), "Promoted");
  EXPECT_EQ(c.at("status").as_string(), "Unknown");
  EXPECT_EQ(c.at("reason").as_string(), "Progressing");
  // The same condition later keeps its transition time; another one takes the new time.
  auto later = k8s::canary_status(st, "old", tracked, s, "2024-01-01T00:09:00Z");
  EXPECT_EQ(later.at("conditions").at(0).at("lastTransitionTime").as_string(), "2024-01-01T00:00:05Z");
  st.phase = canary_phase::failed;
  auto failed = k8s::canary_status(st, "old", tracked, s, "2024-01-01T00:09:00Z");
  EXPECT_EQ(failed.at("conditions").at(0).at("status").as_string(), "False");
  EXPECT_EQ(failed.at("conditions").at(0).at("lastTransitionTime").as_string(), "2024-01-01T00:09:00Z");
  std::string promoted;
  run_state back = k8s::state_from_status(s, promoted);
  EXPECT_EQ(promoted, "old");
  EXPECT_TRUE(back.initialized);
  EXPECT_EQ(back.phase, canary_phase::progressing);
  EXPECT_EQ(back.weight, 20u);
  EXPECT_EQ(back.failed_checks, 1u);
  EXPECT_EQ(back.revision, "abc");
  // Flagger's Initializing, or no status: not initialized yet; odd numbers read as 0.
  EXPECT_FALSE(k8s::state_from_status(parse(R"({"phase":"Initializing"})"), promoted).initialized);
  back = k8s::state_from_status(parse(R"({"phase":"Failed","lastAppliedSpec":"x","canaryWeight":"lots"})"), promoted);
  EXPECT_EQ(back.phase, canary_phase::failed);
  EXPECT_EQ(back.weight, 0u);
  // What a resumed run needs and the status implies.
  back = k8s::state_from_status(parse(R"({"phase":"Promoting","lastAppliedSpec":"x","canaryWeight":0})"), promoted);
  EXPECT_TRUE(back.primary_promoted);
  EXPECT_TRUE(back.pre_rollout_done);
  EXPECT_EQ(back.promoting_since, 0);  // (unknown: counted from the first tick, control/run.cpp)
  back = k8s::state_from_status(parse(R"({"phase":"Progressing","lastAppliedSpec":"x","canaryWeight":0})"), promoted);
  EXPECT_FALSE(back.pre_rollout_done);
  EXPECT_FALSE(back.primary_promoted);
}

TEST(K8sObjects, EventsAreOnTheCanaryWithFlaggersWarnings) {
  auto x = k8s::read_extras(parse(canary_text));
  auto e = k8s::event(x, "Advance podinfo.test canary weight 20", "2024-01-01T00:00:00Z", 1);
  EXPECT_EQ(e.at("type").as_string(), "Normal");
  EXPECT_EQ(e.at("reason").as_string(), "Synced");
  EXPECT_EQ(e.at("involvedObject").at("kind").as_string(), "Canary");
  EXPECT_EQ(e.at("involvedObject").at("uid").as_string(), "u-1");
  EXPECT_EQ(e.at("metadata").at("namespace").as_string(), "test");
  EXPECT_EQ(k8s::event(x, "Rolling back podinfo.test failed checks threshold reached 2", "t", 2).at("type"), "Warning");
  EXPECT_EQ(k8s::event(x, "Halt podinfo.test advancement success rate 90% < 99%", "t", 3).at("type"), "Warning");
  EXPECT_NE(k8s::event(x, "m", "t", 4).at("metadata").at("name"), k8s::event(x, "m", "t", 5).at("metadata").at("name"));
}

TEST(K8sObjects, DocumentsKeepOnlyWhatTheParserReads) {
  auto text = k8s::document_text(parse(R"({"apiVersion":"flagger.app/v1beta1","kind":"Canary",
    "metadata":{"name":"a","namespace":"b","uid":"u","managedFields":[]},"spec":{"x":1},"status":{"phase":"Failed"}})"));
  EXPECT_EQ(text, R"({"apiVersion":"flagger.app/v1beta1","kind":"Canary","metadata":{"name":"a","namespace":"b"},)"
                  R"("spec":{"x":1}})");
}
