// Active health checks and DNS re-resolution, with real upstreams that die and come back.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <thread>

#include "tests/support/fixtures.hpp"
#include "tests/support/http_client.hpp"

using namespace vane::test;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

std::string checked_config(const std::string& endpoints, const std::string& extra = "") {
  return R"(listeners:
  - name: http
    address: 127.0.0.1:0
    routes: [{name: app, split: [{cluster: app, weight: 1}]}]
clusters:
  - name: app
    endpoints: [)" +
         endpoints + R"(]
    health_check: {path: /healthz, interval: 100ms, unhealthy: 2, healthy: 2}
)" + extra;
}

// The health of each endpoint as /clusters reports it, "ADDR=1,ADDR=0".
std::map<std::string, bool> health(const proxy_instance& p) {
  auto clusters = fetch_json(p.admin_port, "/clusters").at("clusters").as_array();
  std::map<std::string, bool> out;
  for (const auto& e : clusters[0].at("endpoints").as_array())
    out[std::string(e.at("address").as_string())] = e.at("healthy").as_bool();
  return out;
}

}  // namespace

TEST(Health, DeadEndpointIsMarkedDownGetsNoTrafficAndComesBack) {
  auto a = std::make_unique<demo_instance>(start_demo("a"));
  auto b = start_demo("b");
  std::string a_address = a->address();
  auto proxy = start_proxy(checked_config(a_address + ", " + b.address()), 2);
  ASSERT_TRUE(eventually([&] {
    return health(proxy) == std::map<std::string, bool>{{a_address, true}, {b.address(), true}};
  }));

  a.reset();  // endpoint a dies
  ASSERT_TRUE(proxy.process->wait_for("endpoint " + a_address + " is now unhealthy"));
  EXPECT_FALSE(health(proxy).at(a_address));
  // Unhealthy endpoints get no traffic: every request lands on b, none fails.
  http_client client(proxy.port);
  for (int i = 0; i < 50; ++i) {
    auto r = client.get("/");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.header("x-version"), "b");
  }
  EXPECT_EQ(fetch_json(proxy.admin_port, "/clusters").at("clusters").as_array()[0].at("healthy_endpoints").as_int64(),
            1);

  // a comes back on its address: after `healthy` passes it takes traffic again.
  demo_instance back;
  back.process =
      std::make_unique<child_process>(demo_binary(), std::vector<std::string>{"--listen", a_address, "--version", "a"});
  ASSERT_TRUE(back.process->wait_for(" listening on "));
  ASSERT_TRUE(proxy.process->wait_for("endpoint " + a_address + " is now healthy"));
  int from_a = 0;
  for (int i = 0; i < 20; ++i) from_a += client.get("/").header("x-version") == "a";
  EXPECT_EQ(from_a, 10);  // round-robin over two healthy endpoints
}

TEST(Health, AllEndpointsUnhealthyIs503) {
  auto a = std::make_unique<demo_instance>(start_demo("a"));
  std::string address = a->address();
  auto proxy = start_proxy(checked_config(address), 1);
  ASSERT_EQ(fetch(proxy.port, "GET", "/").status, 200);
  a.reset();
  ASSERT_TRUE(proxy.process->wait_for("endpoint " + address + " is now unhealthy"));
  auto r = fetch(proxy.port, "GET", "/");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "no healthy upstream\n");
}

TEST(Health, FailingHealthEndpointMarksDownEvenWhenTheServiceAnswers) {
  // A health path that answers 500 fails the check: the endpoint is marked down although it accepts connections.
  auto a = start_demo("a", {"--error-percent", "100"});
  std::string yaml = replace_all(checked_config(a.address()), "path: /healthz", "path: /");
  auto proxy = start_proxy(yaml, 1);
  ASSERT_TRUE(proxy.process->wait_for("is now unhealthy"));
  EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 503);
}

// An endpoint a health check marked down takes traffic again once a reload removes the check: nothing
// checks it any more (it stayed down, every request a 503, until a restart).
TEST(Health, AnEndpointMarkedDownTakesTrafficOnceItsCheckIsRemoved) {
  auto a = start_demo("a", {"--error-percent", "100"});
  const std::string check = "    health_check: {path: /, interval: 100ms, unhealthy: 2, healthy: 2}\n";
  std::string yaml = replace_all(checked_config(a.address()), "path: /healthz", "path: /");
  auto proxy = start_proxy(yaml, 1);
  ASSERT_TRUE(proxy.process->wait_for("is now unhealthy"));
  EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 503);
  const std::string text = read_text_file(proxy.config_path);
  ASSERT_NE(text.find(check), std::string::npos) << text;
  write_file(proxy.config_path, replace_all(text, check, ""));
  proxy.process->signal(SIGHUP);
  // The demo's own answer (it fails every request): the endpoint is asked again.
  EXPECT_TRUE(eventually([&] { return fetch(proxy.port, "GET", "/").status == 500; }));
  EXPECT_TRUE(health(proxy).at(a.address()));
}

TEST(Dns, NamesAreReResolved) {
  // The proxy runs in its own mount namespace with a hosts file the test controls.
  if (geteuid() != 0) GTEST_SKIP() << "needs root for a private /etc/hosts (unshare -m)";
  auto a = start_demo("a");
  std::string dir = make_temp_dir();
  std::string hosts = dir + "/hosts";
  std::string base = read_text_file("/etc/hosts");
  write_file(hosts, base + "\n127.0.0.1 app.vane-test.internal\n");
  std::string config = dir + "/vane.yaml";
  write_file(config, with_test_defaults(R"(listeners:
  - name: http
    address: 127.0.0.1:0
    routes: [{name: app, split: [{cluster: app, weight: 1}]}]
clusters:
  - name: app
    endpoints: [app.vane-test.internal:)" +
                                        std::to_string(a.port) + R"(]
    dns_refresh_rate: 100ms
)"));
  // b on 127.0.0.2 with a's port number: the DNS change moves the cluster from a to b.
  demo_instance b2;
  b2.process = std::make_unique<child_process>(
      demo_binary(), std::vector<std::string>{"--listen", "127.0.0.2:" + std::to_string(a.port), "--version", "b2"});
  auto line = b2.process->wait_for(" listening on ");
  if (!line) GTEST_SKIP() << "cannot listen on 127.0.0.2: " << b2.process->output();
  proxy_instance proxy;
  proxy.process = std::make_unique<child_process>(
      "/usr/bin/unshare", std::vector<std::string>{"-m", "sh", "-c",
                                                   "mount --bind " + hosts + " /etc/hosts && exec " + proxy_binary() +
                                                       " --config " + config + " --workers 1"});
  auto listening = proxy.process->wait_for("http listening on ");
  ASSERT_TRUE(listening) << proxy.process->output();
  proxy.port = port_of_line(listening->substr(0, listening->find(" (")));
  EXPECT_EQ(fetch(proxy.port, "GET", "/").header("x-version"), "a");
  // Rewrite the hosts file in place (a bind mount follows the inode).
  write_file(hosts, base + "\n127.0.0.2 app.vane-test.internal\n");
  ASSERT_TRUE(proxy.process->wait_for("cluster app: DNS now gives 127.0.0.2:" + std::to_string(a.port)))
      << proxy.process->output();
  EXPECT_EQ(fetch(proxy.port, "GET", "/").header("x-version"), "b2");
}
