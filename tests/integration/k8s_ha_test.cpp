// vane-control against vane-fake-apiserver (tests/support/fake_apiserver.cpp),
// as a user runs it outside a cluster (--kubeconfig):
// - --leader-elect: two controllers, one leads (a coordination.k8s.io/v1
//   Lease), the other waits and does no canary work; the leader killed
//   (SIGKILL), the standby takes over once the lease has run out; the leader
//   stopped (SIGTERM), it releases the Lease and the standby takes over at once;
//   a leader that cannot renew stops, exit 1.
// - spec.proxies k8s:NAMESPACE/SERVICE:PORT: the ready endpoints of the
//   Service's EndpointSlices get the weights, a new one at the next tick, a
//   not-ready one never; without credentials such a Canary is refused.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "control/k8s_client.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tls.hpp"

namespace asio = boost::asio;
namespace json = boost::json;
using namespace vane::test;
using namespace vane::control;
using namespace std::chrono_literals;

namespace {

using k8s_api::endpointslices;
using k8s_api::leases;

// The fake API server, a kubeconfig for it (namespace shop, token t1), and a client to drive it.
class FakeCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cert = pki_.issue("apiserver", {"localhost"});
    fake_ = std::make_unique<child_process>(
        VANE_FAKE_APISERVER_BIN,
        std::vector<std::string>{"--cert", cert.certificate, "--key", cert.private_key, "--token", "t1"});
    auto line = fake_->wait_for("listening on 127.0.0.1:");
    ASSERT_TRUE(line) << fake_->output();
    std::string port = std::to_string(port_of_line(*line));
    dir_ = make_temp_dir();
    kubeconfig_ = dir_ + "/kubeconfig";
    write_file(kubeconfig_,
               "apiVersion: v1\nkind: Config\nclusters:\n  - name: fake\n    cluster:\n      server: "
               "https://127.0.0.1:" +
                   port + "\n      certificate-authority: " + pki_.ca_certificate() +
                   "\nusers:\n  - name: test\n    user: {token: t1}\ncontexts:\n  - name: fake\n    "
                   "context: {cluster: fake, user: test, namespace: shop}\ncurrent-context: fake\n");
    k8s_config config;
    config.host = "127.0.0.1";
    config.port = port;
    config.server = "https://127.0.0.1:" + port;
    config.ca_pem = read_text_file(pki_.ca_certificate());
    config.token = "t1";
    thread_ = std::thread([this] { io_.run(); });
    std::string error;
    client_ = k8s_client::make(io_.get_executor(), config, error);
    ASSERT_TRUE(client_) << error;
  }
  void TearDown() override {
    work_.reset();
    io_.stop();
    thread_.join();
  }

  vane::http_result call(const std::string& method, const std::string& target, const std::string& body = "") {
    return asio::co_spawn(io_, client_->call(method, target, body), asio::use_future).get();
  }
  // The Lease's spec, or an empty object when there is none.
  json::object lease() {
    auto r = call("GET", leases.path("shop", "vane-control-leader"));
    if (r.status != 200) return {};
    auto v = json::parse(r.body);
    const auto* spec = v.as_object().if_contains("spec");
    return spec && spec->is_object() ? spec->as_object() : json::object{};
  }
  std::string holder() {
    auto spec = lease();
    const auto* h = spec.if_contains("holderIdentity");
    return h && h->is_string() ? std::string(h->as_string()) : std::string();
  }

  test_pki pki_;
  std::unique_ptr<child_process> fake_;
  std::string dir_, kubeconfig_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{io_.get_executor()};
  std::thread thread_;
  std::shared_ptr<k8s_client> client_;
};

std::string trivial_canary(const std::string& proxies) {
  return "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: app, namespace: test}\nspec:\n"
         "  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}\n  revision: \"1\"\n  route: app\n"
         "  proxies: " +
         proxies + "\n  analysis:\n    interval: 1s\n    threshold: 2\n    maxWeight: 50\n    stepWeight: 10\n";
}

struct controller_process {
  std::unique_ptr<child_process> process;
  std::uint16_t port = 0;
  std::string identity;
  bool ready() const { return fetch_json(port, "/ready").as_object().at("ready").as_bool(); }
};

// --- leader election ---

class LeaderElection : public FakeCluster {
 protected:
  void SetUp() override {
    FakeCluster::SetUp();
    std::filesystem::create_directories(dir_ + "/canaries");
    // A canary whose proxy is not there: the leader initializes it (the work a standby must not do).
    write_file(dir_ + "/canaries/app.yaml",
               trivial_canary("[\"http://127.0.0.1:" + std::to_string(unused_port()) + "\"]"));
  }

  controller_process start(const std::string& lease_duration, const std::string& renew_deadline) {
    controller_process c;
    c.process = std::make_unique<child_process>(
        control_binary(), std::vector<std::string>{
                              "--canaries", dir_ + "/canaries", "--listen", "127.0.0.1:0", "--kubeconfig", kubeconfig_,
                              "--leader-elect", "--leader-elect-lease-duration", lease_duration,
                              "--leader-elect-renew-deadline", renew_deadline, "--leader-elect-retry-period", "200ms"});
    auto line = c.process->wait_for("vane-control listening on");
    if (!line) {
      ADD_FAILURE() << c.process->output();
      return c;
    }
    c.port = port_of_line(*line);
    auto candidate = c.process->wait_for("leader election: candidate ");
    if (!candidate) {
      ADD_FAILURE() << c.process->output();
      return c;
    }
    auto from = candidate->find("candidate ") + 10;
    c.identity = candidate->substr(from, candidate->find(' ', from) - from);
    return c;
  }
};

TEST_F(LeaderElection, OneLeadsTheOtherWaitsAndTakesOverWhenTheLeaderIsKilled) {
  auto a = start("3s", "2s");
  ASSERT_TRUE(eventually([&] { return holder() == a.identity; })) << a.process->output();
  ASSERT_TRUE(a.process->wait_for("Initialization done! app.test")) << a.process->output();
  EXPECT_EQ(lease().at("leaseTransitions").as_int64(), 0);
  EXPECT_EQ(lease().at("leaseDurationSeconds").as_int64(), 3);
  auto b = start("3s", "2s");
  ASSERT_NE(a.identity, b.identity);
  ASSERT_TRUE(b.process->wait_for("is held by " + a.identity)) << b.process->output();
  // The standby serves /ready (false) and /metrics, and does no canary work.
  EXPECT_TRUE(eventually([&] { return a.ready(); }));
  EXPECT_FALSE(b.ready());
  EXPECT_EQ(fetch(b.port, "GET", "/metrics").status, 200);
  EXPECT_TRUE(fetch_json(b.port, "/canaries").as_object().at("canaries").as_array().empty());
  EXPECT_EQ(b.process->output().find("Initialization done!"), std::string::npos) << b.process->output();
  EXPECT_EQ(holder(), a.identity);

  a.process->signal(SIGKILL);
  ASSERT_TRUE(a.process->wait_exit());
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return holder() == b.identity; })) << b.process->output();
  // Not before the record it last saw changing (a renewal at most one retry period before
  // the kill, seen at most one jittered retry period later) had run for the lease's 3 s.
  EXPECT_GE(std::chrono::steady_clock::now() - killed, 1500ms);
  EXPECT_EQ(lease().at("leaseTransitions").as_int64(), 1);
  ASSERT_TRUE(b.process->wait_for("Initialization done! app.test")) << b.process->output();
  EXPECT_TRUE(eventually([&] { return b.ready(); }));
}

TEST_F(LeaderElection, AStoppedLeaderReleasesTheLeaseAndTheStandbyTakesOverAtOnce) {
  // A lease of 60 s: without the release the standby would wait a minute; the deadline below is 20 s.
  auto a = start("60s", "10s");
  ASSERT_TRUE(eventually([&] { return holder() == a.identity; })) << a.process->output();
  auto b = start("60s", "10s");
  ASSERT_TRUE(b.process->wait_for("is held by " + a.identity)) << b.process->output();
  a.process->signal(SIGTERM);
  auto code = a.process->wait_exit();
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0) << a.process->output();
  EXPECT_NE(a.process->output().find("released Lease shop/vane-control-leader"), std::string::npos)
      << a.process->output();
  ASSERT_TRUE(eventually([&] { return holder() == b.identity; }, 20s)) << b.process->output();
  EXPECT_EQ(lease().at("leaseTransitions").as_int64(), 1);
  ASSERT_TRUE(b.process->wait_for("Initialization done! app.test")) << b.process->output();
}

TEST_F(LeaderElection, ALeaderThatCannotRenewStopsWithExitCode1) {
  auto a = start("3s", "2s");
  ASSERT_TRUE(eventually([&] { return holder() == a.identity; })) << a.process->output();
  ASSERT_TRUE(a.process->wait_for("Initialization done! app.test")) << a.process->output();
  // The API server refuses its token from now on: no renewal can succeed.
  ASSERT_EQ(call("PUT", "/fake/token", "another").status, 200);
  auto code = a.process->wait_exit();
  ASSERT_TRUE(code) << a.process->output();
  EXPECT_EQ(*code, 1) << a.process->output();
  EXPECT_NE(a.process->output().find("leader election lost"), std::string::npos) << a.process->output();
}

// A leader that finds another holder in the Lease (it was frozen for longer than the lease, and another
// took over) stops at once, not after retrying for its renew deadline.
TEST_F(LeaderElection, ALeaderThatSeesAnotherHolderStopsAtOnce) {
  auto a = start("60s", "30s");
  ASSERT_TRUE(eventually([&] { return holder() == a.identity; })) << a.process->output();
  ASSERT_TRUE(eventually([&] {  // (a renewal may come between the read and the write: 409, read again)
    auto r = call("GET", leases.path("shop", "vane-control-leader"));
    if (r.status != 200) return false;
    auto v = json::parse(r.body);
    v.as_object()["spec"].as_object()["holderIdentity"] = "another-replica";
    return call("PUT", leases.path("shop", "vane-control-leader"), json::serialize(v)).status == 200;
  }));
  auto code = a.process->wait_exit();
  ASSERT_TRUE(code) << a.process->output();
  EXPECT_EQ(*code, 1) << a.process->output();
  EXPECT_NE(a.process->output().find("another-replica holds it now"), std::string::npos) << a.process->output();
  EXPECT_EQ(holder(), "another-replica");
}

TEST_F(LeaderElection, NeedsCredentials) {
  unsetenv("KUBERNETES_SERVICE_HOST");  // (were the tests run in a pod)
  auto [code, out] = run(control_binary(), {"--canaries", dir_ + "/canaries", "--leader-elect"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("no Kubernetes API credentials: give --kubeconfig FILE"), std::string::npos) << out;
  std::tie(code, out) = run(control_binary(), {"--canaries", dir_ + "/canaries", "--kubeconfig", kubeconfig_,
                                               "--leader-elect", "--leader-elect-renew-deadline", "20s"});
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("the lease duration must be longer than the renew deadline"), std::string::npos) << out;
}

// --- k8s: proxies ---

std::string slice(const std::string& name, std::uint16_t port, const std::string& ready) {
  return R"({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":")" + name +
         R"(","namespace":"shop","labels":{"kubernetes.io/service-name":"fleet"}},"addressType":"IPv4",)" +
         R"("ports":[{"name":"admin","port":)" + std::to_string(port) +
         R"(,"protocol":"TCP"}],"endpoints":[{"addresses":["127.0.0.1"])" + ready + "}]}";
}

std::string split_of(const proxy_instance& p) {
  return json::serialize(fetch_json(p.admin_port, "/routes/app").as_object().at("split"));
}

const std::string all_to_primary = R"([{"cluster":"app-primary","weight":100},{"cluster":"app-canary","weight":0}])";

TEST_F(FakeCluster, K8sProxiesAreTheReadyEndpointsOfTheServicesEndpointSlices) {
  // Three proxies on loopback, each its own slice (a port each, so one address serves for all):
  // a and b ready (b's slice added later), c not ready. All start at 50/50.
  const std::string config =
      half_split_config("127.0.0.1:" + std::to_string(unused_port()), "127.0.0.1:" + std::to_string(unused_port()), "");
  auto a = start_proxy(config);
  auto b = start_proxy(config);
  auto c = start_proxy(config);
  ASSERT_EQ(call("POST", endpointslices.path("shop"), slice("fleet-a", a.admin_port, "")).status, 201);
  ASSERT_EQ(
      call("POST", endpointslices.path("shop"), slice("fleet-c", c.admin_port, R"(,"conditions":{"ready":false})"))
          .status,
      201);
  // Another Service's slice: not this fleet.
  ASSERT_EQ(
      call("POST", endpointslices.path("shop"),
           replace_all(slice("other-b", b.admin_port, ""), "service-name\":\"fleet\"", "service-name\":\"other\""))
          .status,
      201);
  std::filesystem::create_directories(dir_ + "/canaries");
  write_file(dir_ + "/canaries/app.yaml", trivial_canary("[\"k8s:shop/fleet:admin\"]"));
  child_process ctl(control_binary(),
                    {"--canaries", dir_ + "/canaries", "--listen", "127.0.0.1:0", "--kubeconfig", kubeconfig_});
  ASSERT_TRUE(ctl.wait_for("Initialization done! app.test")) << ctl.output();
  ASSERT_TRUE(eventually([&] { return split_of(a) == all_to_primary; })) << ctl.output();
  ASSERT_NE(split_of(b), all_to_primary);
  // b's pod comes up: its slice appears, and it gets the weights at a next tick.
  ASSERT_EQ(call("POST", endpointslices.path("shop"), slice("fleet-b", b.admin_port, R"(,"conditions":{"ready":true})"))
                .status,
            201);
  ASSERT_TRUE(eventually([&] { return split_of(b) == all_to_primary; })) << ctl.output();
  // c, not ready, was in the cache before b and got nothing: still the file's 50/50.
  EXPECT_EQ(split_of(c), R"([{"cluster":"app-primary","weight":50},{"cluster":"app-canary","weight":50}])");
  // The controller watched the slices with the Service's label.
  auto requests = json::parse(call("GET", "/fake/requests").body).as_array();
  bool watched = false;
  for (const auto& r : requests) {
    std::string target(r.at("target").as_string());
    if (target.find("endpointslices?watch=true") != std::string::npos &&
        target.find("labelSelector=kubernetes.io%2Fservice-name%3Dfleet") != std::string::npos)
      watched = true;
  }
  EXPECT_TRUE(watched) << json::serialize(requests);
}

TEST(K8sProxies, ACanaryNamingThemIsRefusedWithoutCredentials) {
  unsetenv("KUBERNETES_SERVICE_HOST");  // (were the tests run in a pod)
  std::string dir = make_temp_dir();
  write_file(dir + "/app.yaml", trivial_canary("[\"k8s:shop/fleet:9901\"]"));
  child_process ctl(control_binary(), {"--canaries", dir, "--listen", "127.0.0.1:0"});
  auto line = ctl.wait_for("Canary app.test refused");
  ASSERT_TRUE(line) << ctl.output();
  EXPECT_NE(line->find("has no credentials for it (give --kubeconfig FILE"), std::string::npos) << *line;
  auto port = port_of_line(*ctl.wait_for("vane-control listening on"));
  EXPECT_TRUE(fetch_json(port, "/canaries").as_object().at("canaries").as_array().empty());
}

}  // namespace
