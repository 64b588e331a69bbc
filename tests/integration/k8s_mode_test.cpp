// `vane-control --kubernetes` end to end against vane-fake-apiserver, our own
// fake of the API server (tests/support/fake_apiserver.cpp; its Deployments
// roll out when the test says so): Flagger's initialization, a new revision
// promoted, a failing one rolled back, a manual gate, a watch that expires
// mid-run, a conflict on the promotion's PUT. Two vane-demo versions stand in
// for the primary's and the canary's pods behind a real vane-proxy carrying
// load; the Canary's spec.proxies is the proxy's admin URL. Tests wait for
// the controller's event lines and the objects' states, never for time.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <csignal>
#include <thread>

#include "control/k8s_client.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/tls.hpp"

namespace asio = boost::asio;
namespace json = boost::json;
using namespace vane::test;
using namespace vane::control;
using namespace std::chrono_literals;

namespace {

using namespace vane::control::k8s_api;

// The target as a user deploys it: a ConfigMap by envFrom, a Secret by a volume, an untracked ConfigMap.
std::string deployment(const std::string& name) {
  return R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":")" + name +
         R"(","namespace":"test","labels":{"app":")" + name + R"(","team":"shop"}},
  "spec":{"replicas":2,"selector":{"matchLabels":{"app":")" +
         name + R"("}},
    "template":{"metadata":{"labels":{"app":")" +
         name + R"("}},"spec":{
      "containers":[{"name":"app","image":"demo:1.0","envFrom":[{"configMapRef":{"name":")" +
         name + R"(-config"}},{"configMapRef":{"name":"shared-untracked"}}]}],
      "volumes":[{"name":"creds","secret":{"secretName":")" +
         name + R"(-secret"}}]}}}})";
}

std::string canary(const std::string& name, std::uint16_t admin_port, const std::string& analysis,
                   const std::string& provider = "vane", int deadline = 60) {
  return R"({"apiVersion":"flagger.app/v1beta1","kind":"Canary","metadata":{"name":")" + name +
         R"(","namespace":"test"},"spec":{"provider":")" + provider +
         R"(","targetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":")" + name +
         R"("},"autoscalerRef":{"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","name":")" + name +
         R"("},"service":{"port":9898},"progressDeadlineSeconds":)" + std::to_string(deadline) + R"(,"route":"app",
  "proxies":["http://127.0.0.1:)" +
         std::to_string(admin_port) + R"("],"analysis":)" + analysis + "}}";
}

const char* const analysis_steps =
    R"({"interval":"1s","threshold":2,"maxWeight":50,"stepWeight":25,
  "metrics":[{"name":"request-success-rate","thresholdRange":{"min":99},"interval":"2s"}]})";

// Requests through the proxy until stopped.
struct load {
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, errors{0};
  std::thread thread;
  explicit load(std::uint16_t port) {
    thread = std::thread([this, port] {
      while (!stop.load()) {
        try {
          http_client c(port);
          for (int i = 0; i < 100 && !stop.load(); ++i) {
            auto r = c.get("/");
            ++answered;
            if (r.status >= 500) ++errors;
          }
        } catch (const std::exception&) {
        }
      }
    });
  }
  ~load() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
};

std::string text(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* at = &v;
  for (auto key : path) {
    if (at->is_array()) {  // a key of digits indexes an array
      std::size_t i = 0;
      for (char ch : key) i = i * 10 + static_cast<std::size_t>(ch - '0');
      if (i >= at->as_array().size()) return "";
      at = &at->as_array()[i];
      continue;
    }
    if (!at->is_object() || !at->as_object().contains(key)) return "";
    at = &at->as_object().at(key);
  }
  return at->is_string() ? std::string(at->as_string()) : json::serialize(*at);
}

class K8sMode : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cert = pki_.issue("apiserver", {"localhost"});
    fake_ = std::make_unique<child_process>(
        VANE_FAKE_APISERVER_BIN,
        std::vector<std::string>{"--cert", cert.certificate, "--key", cert.private_key, "--token", "t1"});
    auto line = fake_->wait_for("listening on 127.0.0.1:");
    ASSERT_TRUE(line) << fake_->output();
    port_ = std::to_string(port_of_line(*line));
    k8s_config config;
    config.host = "127.0.0.1";
    config.port = port_;
    config.server = "https://127.0.0.1:" + port_;
    config.ca_pem = read_text_file(pki_.ca_certificate());
    config.token = "t1";
    thread_ = std::thread([this] { io_.run(); });
    std::string error;
    client_ = k8s_client::make(io_.get_executor(), config, error);
    ASSERT_TRUE(client_) << error;
    kubeconfig_ = pki_.dir() + "/kubeconfig";
    write_file(kubeconfig_, "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: " +
                                config.server + "\n    certificate-authority: " + pki_.ca_certificate() +
                                "\nusers:\n- name: test\n  user:\n    token: t1\ncontexts:\n- name: fake\n"
                                "  context: {cluster: fake, user: test, namespace: test}\ncurrent-context: fake\n");
  }
  void TearDown() override {
    controller_.reset();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  vane::http_result call(const std::string& method, const std::string& target, const std::string& body = "",
                         const std::string& content_type = "") {
    return asio::co_spawn(io_, client_->call(method, target, body, content_type), asio::use_future).get();
  }
  json::value object(const k8s_resource& r, const std::string& name) {
    auto a = call("GET", r.path("test", name));
    if (a.status != 200) return nullptr;
    return json::parse(a.body);
  }
  void create(const k8s_resource& r, const std::string& body) {
    auto a = call("POST", r.path("test"), body);
    ASSERT_EQ(a.status, 201) << a.body;
  }
  void merge_patch(const k8s_resource& r, const std::string& name, const std::string& patch) {
    auto a = call("PATCH", r.path("test", name), patch, k8s_merge_patch);
    ASSERT_EQ(a.status, 200) << a.body;
  }
  void rollouts(const std::string& mode) { ASSERT_EQ(call("PUT", "/fake/rollouts", mode).status, 200); }
  void complete_rollout(const std::string& name) {
    ASSERT_EQ(call("POST", "/fake/rollout?namespace=test&name=" + name).status, 200);
  }
  json::value status() { return object(canaries, "app").as_object()["status"]; }
  std::int64_t replicas(const std::string& name) {
    auto d = object(deployments, name);
    if (!d.is_object()) return -1;
    return d.at("spec").at("replicas").as_int64();
  }
  std::vector<std::string> event_messages() {
    std::vector<std::string> out;
    auto a = call("GET", events.path("test"));
    if (a.status != 200) return out;
    json::value list = json::parse(a.body);
    for (const auto& e : list.at("items").as_array()) out.push_back(text(e, {"message"}));
    return out;
  }
  bool has_event(const std::string& message) {
    auto all = event_messages();
    return std::find(all.begin(), all.end(), message) != all.end();
  }

  // The demos, the proxy with load, the user's objects, and the controller; returns once initialized.
  void start(const std::vector<std::string>& canary_demo_args = {}, const std::string& analysis = analysis_steps) {
    primary_demo_ = start_demo("1.0");
    canary_demo_ = start_demo("2.0", canary_demo_args);
    proxy_ = start_proxy(canary_proxy_config(primary_demo_, canary_demo_), 1);
    load_ = std::make_unique<load>(proxy_.port);
    rollouts("auto");
    create(configmaps, R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"app-config","namespace":"test"},
      "data":{"color":"blue"}})");
    create(configmaps, R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"shared-untracked",
      "namespace":"test","annotations":{"flagger.app/config-tracking":"disabled"}},"data":{"x":"1"}})");
    create(secrets, R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"app-secret","namespace":"test"},
      "type":"Opaque","data":{"token":"czNjcjN0"}})");
    create(deployments, deployment("app"));
    create(hpas, R"({"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{"name":"app",
      "namespace":"test"},"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"app"},
      "minReplicas":2,"maxReplicas":4}})");
    create(canaries, canary("app", proxy_.admin_port, analysis, "vane", deadline_));
    start_controller();
    ASSERT_TRUE(controller_->wait_for("Initialization done! app.test")) << controller_->output();
    ASSERT_TRUE(eventually([&] { return text(status(), {"phase"}) == "Initialized"; })) << controller_->output();
    initial_revision_ = text(status(), {"lastAppliedSpec"});
  }

  std::unique_ptr<child_process> controller_process(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--kubernetes", "--kubeconfig", kubeconfig_,  "--namespace",
                                  "test",         "--listen",     "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<child_process>(control_binary(), args);
  }
  void start_controller() {
    controller_ = controller_process(extra_args_);
    auto line = controller_->wait_for("vane-control listening on");
    ASSERT_TRUE(line) << controller_->output();
    api_port_ = port_of_line(*line);
  }

  // A new revision of the target: its pod template changes (as `kubectl set image` would) and its ConfigMap.
  void new_revision() {
    merge_patch(configmaps, "app-config", R"({"data":{"color":"green"}})");
    merge_patch(deployments, "app", R"({"spec":{"template":{"metadata":{"annotations":{"version":"2.0"}}}}})");
  }

  std::string primary_version() {
    return text(object(deployments, "app-primary"), {"spec", "template", "metadata", "annotations", "version"});
  }

  int deadline_ = 60;                    // the Canary's progressDeadlineSeconds
  std::vector<std::string> extra_args_;  // the controller's further flags
  test_pki pki_;
  std::string port_, kubeconfig_, initial_revision_;
  std::unique_ptr<child_process> fake_, controller_;
  std::uint16_t api_port_ = 0;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread thread_;
  std::shared_ptr<k8s_client> client_;
  demo_instance primary_demo_, canary_demo_;
  proxy_instance proxy_;
  std::unique_ptr<load> load_;
};

TEST_F(K8sMode, InitializationMakesThePrimaryTheCopiesTheServicesAndScalesTheTargetDown) {
  // A Canary of another provider is Flagger's: left alone.
  create(canaries, canary("other", 1, analysis_steps, "istio"));
  start();
  auto primary = object(deployments, "app-primary");
  ASSERT_TRUE(primary.is_object());
  EXPECT_EQ(text(primary, {"spec", "selector", "matchLabels", "app"}), "app-primary");
  EXPECT_EQ(text(primary, {"spec", "template", "metadata", "labels", "app"}), "app-primary");
  EXPECT_EQ(text(primary, {"metadata", "labels", "app"}), "app-primary");
  EXPECT_EQ(text(primary, {"metadata", "labels", "team"}), "shop");
  EXPECT_EQ(text(primary, {"spec", "replicas"}), "2");
  const auto& owner = primary.at("metadata").at("ownerReferences").at(0);
  EXPECT_EQ(text(owner, {"kind"}), "Canary");
  EXPECT_EQ(text(owner, {"name"}), "app");
  EXPECT_EQ(text(owner, {"uid"}), text(object(canaries, "app"), {"metadata", "uid"}));
  // Tracked configs are referenced by their copies; the untracked one as it is.
  const auto& pod = primary.at("spec").at("template").at("spec");
  EXPECT_EQ(text(pod, {"containers"}).find("app-config-primary") != std::string::npos, true) << pod;
  EXPECT_NE(text(pod, {"containers"}).find(R"("shared-untracked")"), std::string::npos) << pod;
  EXPECT_EQ(text(pod.at("volumes").at(0), {"secret", "secretName"}), "app-secret-primary");
  EXPECT_EQ(text(object(configmaps, "app-config-primary"), {"data", "color"}), "blue");
  EXPECT_EQ(text(object(secrets, "app-secret-primary"), {"data", "token"}), "czNjcjN0");
  EXPECT_TRUE(object(configmaps, "shared-untracked-primary").is_null());
  // Services: the apex and the primary select the primary's pods, the canary's the target's.
  EXPECT_EQ(text(object(services, "app"), {"spec", "selector", "app"}), "app-primary");
  EXPECT_EQ(text(object(services, "app-primary"), {"spec", "selector", "app"}), "app-primary");
  EXPECT_EQ(text(object(services, "app-canary"), {"spec", "selector", "app"}), "app");
  EXPECT_EQ(text(object(services, "app-canary"), {"spec", "ports"}),
            R"([{"name":"http","port":9898,"protocol":"TCP","targetPort":9898}])");
  EXPECT_EQ(text(object(hpas, "app-primary"), {"spec", "scaleTargetRef", "name"}), "app-primary");
  EXPECT_EQ(text(object(hpas, "app-primary"), {"spec", "minReplicas"}), "2");
  // The target is scaled to 0 (a JSON merge patch).
  EXPECT_TRUE(eventually([&] { return replicas("app") == 0; }));
  // Status, through the subresource.
  auto st = status();
  EXPECT_EQ(text(st, {"lastPromotedSpec"}), initial_revision_);
  EXPECT_FALSE(initial_revision_.empty());
  EXPECT_EQ(text(st, {"canaryWeight"}), "0");
  const auto& condition = st.at("conditions").at(0);
  EXPECT_EQ(text(condition, {"type"}), "Promoted");
  EXPECT_EQ(text(condition, {"status"}), "True");
  EXPECT_EQ(text(condition, {"reason"}), "Initialized");
  EXPECT_FALSE(text(st, {"trackedConfigs", "configmap/app-config"}).empty()) << st;
  EXPECT_FALSE(text(st, {"trackedConfigs", "secret/app-secret"}).empty()) << st;
  EXPECT_TRUE(text(st, {"trackedConfigs", "configmap/shared-untracked"}).empty()) << st;
  // The event, on the Canary; no analysis on first sight.
  EXPECT_TRUE(eventually([&] { return has_event("Initialization done! app.test"); }));
  auto all = json::parse(call("GET", events.path("test")).body).at("items").as_array();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(text(all[0], {"involvedObject", "kind"}), "Canary");
  EXPECT_EQ(text(all[0], {"involvedObject", "name"}), "app");
  EXPECT_EQ(controller_->output().find("New revision detected"), std::string::npos);
  // How it wrote: status by /status only, the target's scale by a merge patch, never a PUT of the Canary.
  auto requests = json::parse(call("GET", "/fake/requests").body).as_array();
  bool status_put = false, scale_patch = false;
  for (const auto& r : requests) {
    std::string target = text(r, {"target"}), method = text(r, {"method"});
    if (method == "PUT" && target == canaries.path("test", "app")) ADD_FAILURE() << "PUT of the Canary itself";
    if (method == "PUT" && target == canaries.path("test", "app", "status")) status_put = true;
    if (method == "PATCH" && target == deployments.path("test", "app")) scale_patch = true;
  }
  EXPECT_TRUE(status_put);
  EXPECT_TRUE(scale_patch);
  // The other provider's Canary got nothing.
  EXPECT_TRUE(object(deployments, "other-primary").is_null());
  EXPECT_TRUE(text(object(canaries, "other"), {"status"}).empty());
}

TEST_F(K8sMode, ANewRevisionIsScaledUpAnalysedAndPromotedByCopyingTheTemplate) {
  start();
  rollouts("manual");
  merge_patch(hpas, "app", R"({"spec":{"maxReplicas":6}})");
  new_revision();
  ASSERT_TRUE(controller_->wait_for("New revision detected! Scaling up app.test", 30s)) << controller_->output();
  // Scaled up to the primary's replicas, then held until its rollout completes.
  ASSERT_TRUE(eventually([&] { return replicas("app") == 2; }));
  ASSERT_TRUE(controller_->wait_for("app.test not ready: waiting for")) << controller_->output();
  EXPECT_EQ(controller_->output().find("Starting canary analysis"), std::string::npos);
  complete_rollout("app");
  ASSERT_TRUE(controller_->wait_for("Starting canary analysis for app.test")) << controller_->output();
  ASSERT_TRUE(eventually([&] {
    auto st = status();
    return text(st, {"phase"}) == "Progressing" && text(st, {"canaryWeight"}) == "25" &&
           text(st.at("conditions").at(0), {"status"}) == "Unknown";
  })) << status();
  ASSERT_TRUE(controller_->wait_for("Copying app.test template spec to app-primary.test", 60s))
      << controller_->output();
  // The primary now has the template; its rollout is awaited before traffic goes back to it.
  EXPECT_EQ(primary_version(), "2.0");
  EXPECT_EQ(text(object(configmaps, "app-config-primary"), {"data", "color"}), "green");
  EXPECT_EQ(text(object(deployments, "app-primary"), {"spec", "selector", "matchLabels", "app"}), "app-primary");
  // The primary's HPA takes the target HPA's spec at promotion.
  EXPECT_EQ(text(object(hpas, "app-primary"), {"spec", "maxReplicas"}), "6");
  EXPECT_EQ(text(object(hpas, "app-primary"), {"spec", "scaleTargetRef", "name"}), "app-primary");
  complete_rollout("app-primary");
  ASSERT_TRUE(controller_->wait_for("Promotion completed! Scaling down app.test", 60s)) << controller_->output();
  EXPECT_TRUE(eventually([&] { return replicas("app") == 0; }));
  ASSERT_TRUE(eventually([&] { return text(status(), {"phase"}) == "Succeeded"; })) << status();
  auto st = status();
  EXPECT_NE(text(st, {"lastAppliedSpec"}), initial_revision_);
  EXPECT_EQ(text(st, {"lastPromotedSpec"}), text(st, {"lastAppliedSpec"}));
  EXPECT_EQ(text(st.at("conditions").at(0), {"status"}), "True");
  EXPECT_EQ(text(st.at("conditions").at(0), {"reason"}), "Succeeded");
  EXPECT_TRUE(eventually([&] { return has_event("Promotion completed! Scaling down app.test"); }));
  EXPECT_TRUE(has_event("Advance app.test canary weight 50"));
  EXPECT_EQ(controller_->output().find("Rolling back"), std::string::npos);
  EXPECT_EQ(load_->errors.load(), 0);
  EXPECT_GT(canary_demo_.stats().at("requests").as_int64(), 0);
}

TEST_F(K8sMode, AFailingRevisionIsRolledBackAndThePrimaryKept) {
  // The alert goes through an AlertProvider read from the API server.
  auto ops = start_demo("ops");
  create(k8s_resource{"flagger.app", "v1beta1", "alertproviders"},
         R"({"apiVersion":"flagger.app/v1beta1","kind":"AlertProvider","metadata":{"name":"ops","namespace":"test"},
      "spec":{"type":"generic","address":"http://)" +
             ops.address() + R"(/alert"}})");
  start({"--error-percent", "40", "--error-status", "503"},
        R"({"interval":"1s","threshold":2,"maxWeight":50,"stepWeight":25,
    "metrics":[{"name":"request-success-rate","thresholdRange":{"min":99},"interval":"2s"}],
    "alerts":[{"name":"on-call","severity":"error","providerRef":{"name":"ops","namespace":"test"}}]})");
  new_revision();
  ASSERT_TRUE(controller_->wait_for("Canary failed! Scaling down app.test", 60s)) << controller_->output();
  EXPECT_NE(controller_->output().find("Rolling back app.test failed checks threshold reached 2"), std::string::npos);
  EXPECT_TRUE(eventually([&] { return replicas("app") == 0; }));
  ASSERT_TRUE(eventually([&] { return text(status(), {"phase"}) == "Failed"; })) << status();
  auto st = status();
  EXPECT_EQ(text(st.at("conditions").at(0), {"status"}), "False");
  EXPECT_EQ(text(st.at("conditions").at(0), {"reason"}), "Failed");
  EXPECT_EQ(text(st, {"lastPromotedSpec"}), initial_revision_);
  EXPECT_NE(text(st, {"lastAppliedSpec"}), initial_revision_);
  EXPECT_EQ(primary_version(), "");  // never copied
  EXPECT_EQ(text(object(configmaps, "app-config-primary"), {"data", "color"}), "blue");
  EXPECT_TRUE(eventually([&] { return has_event("Canary failed! Scaling down app.test"); }));
  ASSERT_TRUE(eventually([&] { return ops.stats().at("requests").as_int64() == 1; })) << ops.stats();
  EXPECT_NE(std::string(ops.stats().at("last_body").as_string()).find("Canary analysis failed"), std::string::npos);
  // Everything back on the primary.
  auto policy = fetch_json(proxy_.admin_port, "/routes/app");
  EXPECT_EQ(json::serialize(policy.at("split")),
            R"([{"cluster":"app-primary","weight":100},{"cluster":"app-canary","weight":0}])");
}

TEST_F(K8sMode, AManualGateHoldsThePromotionUntilPromoteIsCalled) {
  std::string gate = "http://127.0.0.1:" + std::to_string(unused_port()) + "/gate";
  start({}, R"({"interval":"1s","threshold":2,"maxWeight":50,"stepWeight":50,
    "metrics":[{"name":"request-success-rate","thresholdRange":{"min":99},"interval":"2s"}],
    "webhooks":[{"name":"approval","type":"confirm-promotion","url":")" +
                gate + R"("}]})");
  new_revision();
  ASSERT_TRUE(controller_->wait_for("Halt app.test advancement waiting for approval approval", 60s))
      << controller_->output();
  ASSERT_TRUE(eventually([&] { return text(status(), {"phase"}) == "WaitingPromotion"; })) << status();
  EXPECT_EQ(primary_version(), "");
  auto r = run(control_binary(), {"promote", "app", "--server", "http://127.0.0.1:" + std::to_string(api_port_)});
  ASSERT_EQ(r.first, 0) << r.second;
  ASSERT_TRUE(controller_->wait_for("Promotion completed! Scaling down app.test", 60s)) << controller_->output();
  EXPECT_EQ(primary_version(), "2.0");
  ASSERT_TRUE(eventually([&] { return text(status(), {"phase"}) == "Succeeded"; })) << status();
}

TEST_F(K8sMode, AWatchThatExpiresMidRunIsListedAgainAndTheRunGoesOn) {
  start();
  new_revision();
  ASSERT_TRUE(controller_->wait_for("Advance app.test canary weight 25", 60s)) << controller_->output();
  ASSERT_EQ(call("POST", "/fake/expire-watches").status, 200);
  ASSERT_TRUE(controller_->wait_for("is gone (410): listing again")) << controller_->output();
  ASSERT_TRUE(controller_->wait_for("Promotion completed! Scaling down app.test", 60s)) << controller_->output();
  ASSERT_TRUE(eventually([&] { return text(status(), {"phase"}) == "Succeeded"; })) << status();
  // The watch is back: a Canary made now is seen and initialized.
  create(deployments, deployment("shop"));
  create(hpas, R"({"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{"name":"shop",
    "namespace":"test"},"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"shop"},
    "maxReplicas":2}})");
  create(canaries, canary("shop", proxy_.admin_port, analysis_steps));
  ASSERT_TRUE(controller_->wait_for("Initialization done! shop.test")) << controller_->output();
  EXPECT_EQ(text(object(deployments, "shop-primary"), {"spec", "selector", "matchLabels", "app"}), "shop-primary");
}

TEST_F(K8sMode, APromotionThatMeetsAConflictReadsAgainAndWrites) {
  start();
  // The primary is written by someone else just before the promotion's PUT: 409, then read again.
  ASSERT_EQ(call("POST", "/fake/conflict?path=" + deployments.path("test", "app-primary")).status, 200);
  new_revision();
  ASSERT_TRUE(controller_->wait_for("Promotion completed! Scaling down app.test", 60s)) << controller_->output();
  EXPECT_NE(controller_->output().find("promotion PUT conflicted; written at try 2"), std::string::npos)
      << controller_->output();
  auto primary = object(deployments, "app-primary");
  EXPECT_EQ(primary_version(), "2.0");
  // Both writes are there: the other client's and the promotion.
  EXPECT_EQ(text(primary, {"metadata", "annotations", "fake.vane.dev/concurrent-write"}), "1");
  auto requests = json::parse(call("GET", "/fake/requests").body).as_array();
  int puts = 0;
  for (const auto& r : requests)
    if (text(r, {"method"}) == "PUT" && text(r, {"target"}) == deployments.path("test", "app-primary")) ++puts;
  EXPECT_EQ(puts, 2);
}

TEST_F(K8sMode, ARestartedControllerResumesTheRunFromTheCanarysStatus) {
  start();
  new_revision();
  ASSERT_TRUE(controller_->wait_for("Advance app.test canary weight 25", 60s)) << controller_->output();
  ASSERT_TRUE(eventually([&] { return text(status(), {"canaryWeight"}) == "25"; })) << status();
  std::string revision = text(status(), {"lastAppliedSpec"});
  controller_.reset();  // SIGTERM: no state file in this mode, the Canary's status is the state
  start_controller();
  ASSERT_TRUE(controller_->wait_for("Promotion completed! Scaling down app.test", 60s)) << controller_->output();
  std::string out = controller_->output();
  EXPECT_EQ(out.find("Initialization done!"), std::string::npos) << out;
  EXPECT_EQ(out.find("New revision detected!"), std::string::npos) << out;
  EXPECT_EQ(out.find("Advance app.test canary weight 25"), std::string::npos) << out;
  EXPECT_NE(out.find("Advance app.test canary weight 50"), std::string::npos) << out;
  ASSERT_TRUE(eventually([&] { return text(status(), {"phase"}) == "Succeeded"; })) << status();
  EXPECT_EQ(text(status(), {"lastPromotedSpec"}), revision);
  EXPECT_EQ(primary_version(), "2.0");
}

TEST_F(K8sMode, ARevisionThatNeverRollsOutIsRolledBackAtTheProgressDeadline) {
  deadline_ = 3;
  start();
  rollouts("manual");  // the canary's pods never become available
  new_revision();
  ASSERT_TRUE(controller_->wait_for("Rolling back app.test progress deadline exceeded app.test not ready", 60s))
      << controller_->output();
  ASSERT_TRUE(controller_->wait_for("Canary failed! Scaling down app.test")) << controller_->output();
  EXPECT_EQ(controller_->output().find("Starting canary analysis"), std::string::npos);
  // The same message tick after tick is one Event whose count grows (as client-go's recorder does).
  const std::string waiting = "app.test not ready: waiting for the deployment spec update to be observed";
  std::string out = controller_->output();
  std::int64_t lines = 0;
  const std::string line = "Z " + waiting + "\n";  // an event line of its own (the rollback's quotes it)
  for (auto at = out.find(line); at != std::string::npos; at = out.find(line, at + 1)) ++lines;
  ASSERT_GE(lines, 1);
  ASSERT_TRUE(eventually([&] {
    json::value list = json::parse(call("GET", events.path("test")).body);
    std::int64_t objects = 0, count = 0;
    for (const auto& e : list.at("items").as_array())
      if (text(e, {"message"}) == waiting) {
        ++objects;
        count = e.at("count").to_number<std::int64_t>();
      }
    return objects == 1 && count == lines;
  })) << lines
      << " lines\n"
      << call("GET", events.path("test")).body;
  EXPECT_TRUE(eventually([&] { return replicas("app") == 0; }));
  ASSERT_TRUE(eventually([&] { return text(status(), {"phase"}) == "Failed"; })) << status();
  EXPECT_EQ(primary_version(), "");
}

TEST_F(K8sMode, ACanaryDeletedAndMadeAgainIsInitializedAgain) {
  start();
  ASSERT_EQ(call("DELETE", canaries.path("test", "app")).status, 200);
  ASSERT_TRUE(controller_->wait_for("canary app.test removed")) << controller_->output();
  // The garbage collector deleted what the Canary owned (the fake does so at once)...
  EXPECT_TRUE(object(deployments, "app-primary").is_null());
  EXPECT_TRUE(object(services, "app").is_null());
  // ...but one object of the old Canary is still there when the new one comes (a collector that lags): it is
  // not taken as the new Canary's, which waits for it to go, and then makes it again.
  create(services, R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"app-canary","namespace":"test",
      "ownerReferences":[{"apiVersion":"flagger.app/v1beta1","kind":"Canary","name":"app","uid":"old-uid",
      "controller":true}]},"spec":{"selector":{"app":"app"},"ports":[{"port":80}]}})");
  // (a config copy too: it is not refreshed as the new one's either)
  EXPECT_TRUE(object(configmaps, "app-config-primary").is_null());
  create(configmaps, R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"app-config-primary",
      "namespace":"test","ownerReferences":[{"apiVersion":"flagger.app/v1beta1","kind":"Canary","name":"app",
      "uid":"old-uid","controller":true}]},"data":{"old":"1"}})");
  create(canaries, canary("app", proxy_.admin_port, analysis_steps));
  ASSERT_TRUE(controller_->wait_for("canary app.test is a new object")) << controller_->output();
  ASSERT_TRUE(controller_->wait_for("ConfigMap app-config-primary.test belongs to another Canary (uid old-uid"))
      << controller_->output();
  EXPECT_EQ(text(object(configmaps, "app-config-primary"), {"data", "old"}), "1");
  ASSERT_EQ(call("DELETE", configmaps.path("test", "app-config-primary")).status, 200);
  ASSERT_TRUE(controller_->wait_for("Service app-canary.test belongs to another Canary (uid old-uid"))
      << controller_->output();
  ASSERT_EQ(call("DELETE", services.path("test", "app-canary")).status, 200);
  ASSERT_TRUE(eventually([&] {
    std::string out = controller_->output();
    auto first = out.find("Initialization done! app.test");
    return first != std::string::npos && out.find("Initialization done! app.test", first + 1) != std::string::npos;
  })) << controller_->output();
  ASSERT_TRUE(eventually([&] { return text(status(), {"phase"}) == "Initialized"; })) << status();
  EXPECT_EQ(text(status(), {"lastPromotedSpec"}), initial_revision_);
  const std::string uid = text(object(canaries, "app"), {"metadata", "uid"});
  EXPECT_EQ(text(object(services, "app-canary"), {"metadata", "ownerReferences", "0", "uid"}), uid);
  EXPECT_EQ(text(object(deployments, "app-primary"), {"metadata", "ownerReferences", "0", "uid"}), uid);
  EXPECT_EQ(text(object(configmaps, "app-config-primary"), {"metadata", "ownerReferences", "0", "uid"}), uid);
}

// The Services route every request: one deleted after initialization is made again at the next tick.
TEST_F(K8sMode, ADeletedServiceIsMadeAgain) {
  start();
  ASSERT_EQ(call("DELETE", services.path("test", "app")).status, 200);
  ASSERT_TRUE(eventually([&] { return object(services, "app").is_object(); })) << controller_->output();
  EXPECT_EQ(text(object(services, "app"), {"spec", "selector", "app"}), "app-primary");
}

TEST_F(K8sMode, WithLeaderElectionTheStandbyFinishesTheRunOfAKilledLeader) {
  extra_args_ = {"--leader-elect",
                 "--leader-elect-lease-duration",
                 "3s",
                 "--leader-elect-renew-deadline",
                 "2s",
                 "--leader-elect-retry-period",
                 "200ms"};
  start();  // the first replica leads (no other), initializes
  auto standby = controller_process(extra_args_);
  ASSERT_TRUE(standby->wait_for("vane-control listening on")) << standby->output();
  new_revision();
  ASSERT_TRUE(controller_->wait_for("Advance app.test canary weight 25", 60s)) << controller_->output();
  EXPECT_EQ(standby->output().find("leading"), std::string::npos) << standby->output();
  // Killed mid-run (SIGKILL: no release of the Lease): the standby takes over once the lease has run
  // out, and goes on from the Canary's status.
  controller_->signal(SIGKILL);
  controller_.reset();
  ASSERT_TRUE(standby->wait_for("leading: loading the canaries", 30s)) << standby->output();
  ASSERT_TRUE(standby->wait_for("Promotion completed! Scaling down app.test", 60s)) << standby->output();
  std::string out = standby->output();
  EXPECT_EQ(out.find("Initialization done!"), std::string::npos) << out;
  EXPECT_EQ(out.find("New revision detected!"), std::string::npos) << out;
  ASSERT_TRUE(eventually([&] { return text(status(), {"phase"}) == "Succeeded"; })) << status();
  EXPECT_EQ(primary_version(), "2.0");
}

}  // namespace
