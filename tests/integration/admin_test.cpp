// The admin API, hot reload and drain of vane-proxy, through the real binary.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/error.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <thread>

#include "tests/support/fixtures.hpp"
#include "tests/support/http_client.hpp"

using namespace vane::test;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

std::string two_cluster_config(const demo_instance& a, const demo_instance& b, int wa = 90, int wb = 10,
                               const std::string& top = "") {
  return top + weighted_split_config(a.address(), b.address(), wa, wb);
}

json::object admin_json(const proxy_instance& p, const std::string& method, const std::string& target,
                        const std::string& body = "", int* status = nullptr,
                        std::vector<std::pair<std::string, std::string>> headers = {}) {
  auto r = fetch(p.admin_port, method, target, headers, body);
  if (status) *status = r.status;
  EXPECT_EQ(r.header("content-type"), "application/json") << target;
  return json::parse(r.body).as_object();
}

std::string split_body(int primary, int canary) {
  return R"({"split":[{"cluster":"app-primary","weight":)" + std::to_string(primary) +
         R"(},{"cluster":"app-canary","weight":)" + std::to_string(canary) + "}]}";
}

std::pair<int, int> count_versions(std::uint16_t port, int n) {
  http_client c(port);
  int a = 0, b = 0;
  for (int i = 0; i < n; ++i) {
    auto r = c.get("/");
    EXPECT_EQ(r.status, 200);
    (r.header("x-version") == "a" ? a : b)++;
  }
  return {a, b};
}

}  // namespace

TEST(Admin, ReadyConfigRoutesAndClusters) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto proxy = start_proxy(two_cluster_config(a, b), 2);
  int status = 0;
  EXPECT_EQ(admin_json(proxy, "GET", "/ready", "", &status).at("ready").as_bool(), true);
  EXPECT_EQ(status, 200);
  auto config = admin_json(proxy, "GET", "/config");
  EXPECT_EQ(config.at("generation").as_int64(), 1);
  EXPECT_EQ(config.at("listeners").as_array()[0].at("routes").as_array()[0].at("name").as_string(), "app");
  auto route = admin_json(proxy, "GET", "/routes/app");
  EXPECT_EQ(route.at("policy_generation").as_int64(), 1);
  EXPECT_EQ(json::serialize(route.at("split")),
            R"([{"cluster":"app-primary","weight":90},{"cluster":"app-canary","weight":10}])");
  ASSERT_EQ(fetch(proxy.port, "GET", "/").status, 200);
  auto clusters = admin_json(proxy, "GET", "/clusters").at("clusters").as_array();
  ASSERT_EQ(clusters.size(), 2u);
  EXPECT_EQ(clusters[0].at("name").as_string(), "app-primary");
  EXPECT_EQ(clusters[0].at("endpoints").as_array()[0].at("address").as_string(), a.address());
  EXPECT_EQ(clusters[0].at("pool").at("created").as_int64(), 1);  // the one request above
}

TEST(Admin, BadCallsGet4xxJsonAndChangeNothing) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto proxy = start_proxy(two_cluster_config(a, b), 1);
  struct bad_call {
    std::string method, target, body;
    int status;
    std::string error_part;
  };
  std::vector<bad_call> calls{
      {"PUT", "/routes/app/traffic", "{not json", 400, "not JSON"},
      {"PUT", "/routes/app/traffic", "[1,2]", 400, "must be a JSON object"},
      {"PUT", "/routes/ghost/traffic", split_body(1, 1), 404, "no route named 'ghost'"},
      {"PUT", "/routes/app/traffic", R"({"split":[{"cluster":"nope","weight":1}]})", 400, "unknown cluster 'nope'"},
      {"PUT", "/routes/app/traffic", split_body(-1, 5), 400, "weight of 'app-primary' must be an integer"},
      {"PUT", "/routes/app/traffic", split_body(0, 0), 400, "add up to 0"},
      {"PUT", "/routes/app/traffic", R"({"split":[]})", 400, "non-empty list"},
      {"PUT", "/routes/app/traffic", R"({"split":null})", 400, "cannot be turned off"},
      {"PUT", "/routes/app/traffic", R"({"colour":"blue"})", 400, "unknown field 'colour'"},
      {"PUT", "/routes/app/traffic", R"({"split":[{"cluster":"app-primary","weight":1,"x":1}]})", 400,
       "unknown field 'x'"},
      {"PUT", "/routes/app/traffic",
       R"({"split":[{"cluster":"app-primary","weight":1},{"cluster":"app-primary","weight":2}]})", 400, "twice"},
      // all-or-nothing: a good split with a bad field changes nothing
      {"PUT", "/routes/app/traffic", R"({"split":[{"cluster":"app-canary","weight":1}],"mirror":{"cluster":"nope"}})",
       400, "mirror: unknown cluster 'nope'"},
      {"GET", "/routes/app/traffic", "", 405, "use PUT or DELETE"},
      {"POST", "/config", "", 405, "use GET"},
      {"GET", "/routes/ghost", "", 404, "no route named 'ghost'"},
      {"DELETE", "/routes/ghost/traffic", "", 404, "no route named 'ghost'"},
      {"GET", "/nowhere", "", 404, "unknown admin path"},
  };
  {
    // A body over the cap is refused from its Content-Length, before it is read.
    raw_connection c(proxy.admin_port);
    c.send("PUT /routes/app/traffic HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
    std::string got = c.read_all();
    EXPECT_EQ(got.rfind("HTTP/1.1 413 ", 0), 0u) << got;
    EXPECT_NE(got.find(R"({"error":"request body over 1MiB"})"), std::string::npos) << got;
  }
  for (const auto& c : calls) {
    int status = 0;
    auto body = admin_json(proxy, c.method, c.target, c.body, &status);
    EXPECT_EQ(status, c.status) << c.method << " " << c.target << " " << c.body.substr(0, 80);
    ASSERT_TRUE(body.contains("error")) << json::serialize(body);
    EXPECT_NE(std::string(body.at("error").as_string()).find(c.error_part), std::string::npos)
        << json::serialize(body) << " for " << c.body.substr(0, 80);
  }
  auto route = admin_json(proxy, "GET", "/routes/app");
  EXPECT_EQ(route.at("policy_generation").as_int64(), 1);
  EXPECT_EQ(route.at("overrides").as_array().size(), 0u);
  auto [va, vb] = count_versions(proxy.port, 100);
  EXPECT_EQ(va, 90);
  EXPECT_EQ(vb, 10);
}

TEST(Admin, TrafficPutSetsTheSplitPerEpoch) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto proxy = start_proxy(two_cluster_config(a, b), 1);
  std::int64_t generation = 1;
  for (auto [wa, wb] : {std::pair{50, 50}, {0, 1}, {3, 1}, {1, 0}, {90, 10}}) {
    int status = 0;
    auto route = admin_json(proxy, "PUT", "/routes/app/traffic", split_body(wa, wb), &status);
    ASSERT_EQ(status, 200) << json::serialize(route);
    EXPECT_EQ(route.at("policy_generation").as_int64(), ++generation);
    // A 200 means every worker has the new policy: the next requests follow it exactly.
    auto [va, vb] = count_versions(proxy.port, 100);  // a whole number of windows for every pair here
    int total = va + vb;
    EXPECT_EQ(va * (wa + wb), total * wa) << wa << "/" << wb << ": " << va << "/" << vb;
  }
  // The same PUT again changes nothing and keeps the generation.
  auto same = admin_json(proxy, "PUT", "/routes/app/traffic", split_body(90, 10));
  EXPECT_EQ(same.at("policy_generation").as_int64(), generation);
  // DELETE returns to the file's split; here the same weights, so the generation stays too.
  auto deleted = admin_json(proxy, "DELETE", "/routes/app/traffic");
  EXPECT_EQ(deleted.at("overrides").as_array().size(), 0u);
  EXPECT_EQ(deleted.at("policy_generation").as_int64(), generation);
}

// The rollback case: weight 0 for the canary must hold for the very next
// request, also on a keep-alive connection that sat idle across the PUT.
TEST(Admin, AnIdleKeepAliveConnectionsNextRequestFollowsAPut) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto proxy = start_proxy(two_cluster_config(a, b, 0, 1), 1);
  http_client c(proxy.port);
  EXPECT_EQ(c.get("/").header("x-version"), "b");
  int status = 0;
  admin_json(proxy, "PUT", "/routes/app/traffic", split_body(1, 0), &status);
  ASSERT_EQ(status, 200);
  auto r = c.get("/");
  EXPECT_EQ(r.header("x-version"), "a");
  EXPECT_TRUE(r.keep_alive);
  EXPECT_EQ(b.stats().at("requests").as_int64(), 1);
}

TEST(Admin, TwoHundredPutsUnderLoadLoseNothing) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto proxy = start_proxy(two_cluster_config(a, b), 2);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&] {
      http_client c(proxy.port);
      while (!stop) {
        try {
          (c.get("/").status == 200 ? ok : failed)++;
        } catch (const std::exception&) {
          failed++;
          return;
        }
      }
    });
  }
  int put_failures = 0;
  for (int i = 0; i < 200; ++i) {
    try {
      int status = 0;
      auto body =
          admin_json(proxy, "PUT", "/routes/app/traffic", split_body(i % 2 ? 10 : 90, i % 2 ? 90 : 10), &status);
      if (status != 200) {
        ADD_FAILURE() << "PUT " << i << ": " << status << " " << json::serialize(body);
        ++put_failures;
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << "PUT " << i << ": " << e.what();
      ++put_failures;
    }
  }
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(put_failures, 0);
  EXPECT_EQ(failed, 0);
  EXPECT_GT(ok, 0);
  auto served = a.stats().at("requests").as_int64() + b.stats().at("requests").as_int64();
  EXPECT_EQ(served, ok.load());
  // The first PUT (90/10) equals the file's split: no change, no new generation; the 199 others each make one.
  EXPECT_EQ(admin_json(proxy, "GET", "/routes/app").at("policy_generation").as_int64(), 200);
}

TEST(Admin, BearerTokenGuardsEveryCallButReadyAndMetrics) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  std::string dir = make_temp_dir();
  write_file(dir + "/token", "s3cret\n");
  auto proxy = start_proxy(
      two_cluster_config(a, b, 90, 10, "admin: {address: 127.0.0.1:0, token_file: " + dir + "/token}\n"), 1);
  int status = 0;
  admin_json(proxy, "GET", "/ready", "", &status);
  EXPECT_EQ(status, 200);
  auto denied = admin_json(proxy, "GET", "/config", "", &status);
  EXPECT_EQ(status, 401);
  EXPECT_EQ(denied.at("error").as_string(), "missing or wrong bearer token");
  admin_json(proxy, "PUT", "/routes/app/traffic", split_body(1, 1), &status, {{"authorization", "Bearer wrong"}});
  EXPECT_EQ(status, 401);
  admin_json(proxy, "PUT", "/routes/app/traffic", split_body(1, 1), &status, {{"authorization", "Bearer s3cret"}});
  EXPECT_EQ(status, 200);
  admin_json(proxy, "GET", "/config", "", &status, {{"authorization", "Bearer s3cret"}});
  EXPECT_EQ(status, 200);
}

TEST(Admin, NonLoopbackAdminWithoutTokenRefusesToStart) {
  auto a = start_demo("a");
  std::string path = make_temp_dir() + "/vane.yaml";
  write_file(path,
             "admin: {address: 0.0.0.0:0}\nlisteners: [{name: l, address: 127.0.0.1:0, routes: [{name: r, "
             "split: [{cluster: c, weight: 1}]}]}]\nclusters: [{name: c, endpoints: [" +
                 a.address() + "]}]\n");
  auto [code, output] = run(proxy_binary(), {"--config", path});
  EXPECT_EQ(code, 1);
  EXPECT_NE(output.find("admin.token_file is required when admin.address (0.0.0.0:0) is not loopback"),
            std::string::npos)
      << output;
}

// A traffic PUT waits while its policy reaches the workers; a reload meanwhile may remove its route.
// The PUT is then answered (409) and the proxy goes on: it used to read the gone route and crash. Cluster
// names in the file are re-resolved every 5ms meanwhile, each lookup awaited while PUTs and reloads
// replace the config it walks (a use-after-free under ASan before).
TEST(Reload, TrafficPutsWhileReloadsRemoveTheirRouteAreAnswered) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  std::string config =
      weighted_split_config("localhost:" + std::to_string(a.port), "localhost:" + std::to_string(b.port), 90, 10);
  config = replace_all(config, "endpoints: [localhost:" + std::to_string(b.port) + "]}",
                       "endpoints: [localhost:" + std::to_string(b.port) + "], dns_refresh_rate: 5ms}");
  auto proxy = start_proxy(config, 2);
  const std::string file_with = read_text_file(proxy.config_path);
  const std::string file_without = replace_all(file_with, "      - name: app\n", "      - name: other\n");
  std::atomic<bool> flipped{false};
  std::atomic<int> conflicts{0};
  std::thread flipper([&] {
    // Until a PUT met a reload halfway (bounded: 3,000 flips at most).
    for (int i = 0; i < 3000 && conflicts == 0; ++i) {
      write_file(proxy.config_path + ".tmp", i % 2 ? file_with : file_without);
      std::filesystem::rename(proxy.config_path + ".tmp", proxy.config_path);
      proxy.process->signal(SIGHUP);
      std::this_thread::sleep_for(std::chrono::milliseconds(3));  // (pacing a bounded loop, not a wait)
    }
    flipped = true;
  });
  std::map<int, int> statuses;
  for (int i = 0; i < 100000 && !flipped; ++i) {
    int status = 0;
    try {
      admin_json(proxy, "PUT", "/routes/app/traffic", split_body(i % 2 ? 10 : 90, i % 2 ? 90 : 10), &status);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "PUT " << i << ": " << e.what();
      break;
    }
    ++statuses[status];
    if (status == 409) ++conflicts;
  }
  flipper.join();
  for (const auto& [status, n] : statuses)
    EXPECT_TRUE(status == 200 || status == 404 || status == 409) << status << " x" << n;
  EXPECT_GT(conflicts.load(), 0);  // the case this is about came
  int ready = 0;
  admin_json(proxy, "GET", "/ready", "", &ready);
  EXPECT_EQ(ready, 200);  // (alive)
}

// A reload may move a listener to another host on the same port (127.0.0.1:P to 0.0.0.0:P): the port is
// this process's own, not "in use".
TEST(Reload, AListenerMovedToAnotherHostOnItsPortIsOpened) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto proxy = start_proxy(two_cluster_config(a, b), 1);
  const std::string port = std::to_string(proxy.port);
  write_file(proxy.config_path, replace_all(read_text_file(proxy.config_path), "    address: 127.0.0.1:0",
                                            "    address: 0.0.0.0:" + port));
  proxy.process->signal(SIGHUP);
  ASSERT_TRUE(proxy.process->wait_for("listener http listening on 0.0.0.0:" + port)) << proxy.process->output();
  EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 200);
}

// The token a non-loopback admin address needs cannot be dropped by a reload: a new admin address
// takes effect only at the next start, so the file is checked against the address in effect.
TEST(Reload, TheAdminTokenStaysWhileTheAdminAddressIsNotLoopback) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  std::string dir = make_temp_dir();
  write_file(dir + "/token", "s3cret\n");
  const std::string admin = "admin: {address: 0.0.0.0:0, token_file: " + dir + "/token}\n";
  auto proxy = start_proxy(two_cluster_config(a, b, 90, 10, admin), 1);
  int status = 0;
  admin_json(proxy, "GET", "/config", "", &status);
  ASSERT_EQ(status, 401);
  write_file(proxy.config_path,
             replace_all(read_text_file(proxy.config_path), admin, "admin: {address: 127.0.0.1:0}\n"));
  proxy.process->signal(SIGHUP);
  ASSERT_TRUE(proxy.process->wait_for("admin.token_file is required while admin.address (0.0.0.0:0) is not loopback"))
      << proxy.process->output();
  admin_json(proxy, "GET", "/config", "", &status);
  EXPECT_EQ(status, 401);
  admin_json(proxy, "PUT", "/routes/app/traffic", split_body(1, 1), &status);
  EXPECT_EQ(status, 401);
}

// A port another process listens on is "in use", also when that process took it with SO_REUSEPORT (as
// every vane worker does): the kernel would otherwise share the port between the two silently.
TEST(Admin, AListenerPortAnotherProxyHoldsIsInUse) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto first = start_proxy(two_cluster_config(a, b), 2);
  std::string taken =
      replace_all(two_cluster_config(a, b), "address: 127.0.0.1:0", "address: 127.0.0.1:" + std::to_string(first.port));
  std::string path = make_temp_dir() + "/vane.yaml";
  write_file(path, with_test_defaults(taken));
  auto [code, output] = run(proxy_binary(), {"--config", path, "--workers", "1"});
  EXPECT_NE(code, 0) << output;
  EXPECT_NE(output.find("cannot listen on 127.0.0.1:" + std::to_string(first.port)), std::string::npos) << output;
}

// admin.token_file is read relative to the config's directory, as the TLS files are.
TEST(Admin, ARelativeTokenFileIsBesideTheConfig) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  std::string dir = make_temp_dir();
  write_file(dir + "/token", "s3cret\n");
  write_file(dir + "/vane.yaml",
             two_cluster_config(a, b, 90, 10, "admin: {address: 127.0.0.1:0, token_file: token}\n"));
  auto [code, output] = run(proxy_binary(), {"--config", dir + "/vane.yaml", "--validate"});
  EXPECT_EQ(code, 0) << output;  // (the test's working directory is elsewhere)
}

TEST(Reload, BadFileIsRefusedAndTheOldConfigKeepsServing) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto proxy = start_proxy(two_cluster_config(a, b, 1, 0), 1);
  std::string good = read_text_file(proxy.config_path);
  write_file(proxy.config_path, good + "  - {name: broken, endpoints: [nowhere]}\n");
  ASSERT_TRUE(proxy.process->wait_for("config refused, keeping generation 1")) << proxy.process->output();
  EXPECT_NE(proxy.process->output().find(proxy.config_path + ":"), std::string::npos);  // FILE:LINE:COL logged
  EXPECT_EQ(admin_json(proxy, "GET", "/config").at("generation").as_int64(), 1);
  EXPECT_EQ(admin_json(proxy, "GET", "/config").at("reloads").at("error").as_int64(), 1);
  auto [va, vb] = count_versions(proxy.port, 20);
  EXPECT_EQ(va, 20);
  // A good file takes effect; the listener (same address) is kept: same port.
  write_file(proxy.config_path, replace_all(good, "weight: 1}", "weight: 0}") + "\n");
  std::string edited = read_text_file(proxy.config_path);
  edited = replace_all(edited, "{cluster: app-canary, weight: 0}", "{cluster: app-canary, weight: 1}");
  write_file(proxy.config_path, edited);
  ASSERT_TRUE(eventually([&] { return admin_json(proxy, "GET", "/config").at("generation").as_int64() >= 2; }));
  ASSERT_TRUE(eventually([&] {
    return json::serialize(admin_json(proxy, "GET", "/routes/app").at("split")) ==
           R"([{"cluster":"app-primary","weight":0},{"cluster":"app-canary","weight":1}])";
  }));
  auto [va2, vb2] = count_versions(proxy.port, 20);
  EXPECT_EQ(vb2, 20);
  EXPECT_EQ(va2, 0);
}

TEST(Reload, SighupReloadsAndOverridesSurviveWhileTheirClustersExist) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto proxy = start_proxy(two_cluster_config(a, b), 1);
  int status = 0;
  admin_json(proxy, "PUT", "/routes/app/traffic", split_body(0, 1), &status);
  ASSERT_EQ(status, 200);
  // Change something else in the file (a limit): the override stays.
  std::string text = read_text_file(proxy.config_path);
  std::string changed = "limits: {max_headers: 50}\n" + text;
  // Write the new file through a rename (as editors do) and also signal: both paths lead to one reload.
  write_file(proxy.config_path + ".tmp", changed);
  std::filesystem::rename(proxy.config_path + ".tmp", proxy.config_path);
  proxy.process->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return admin_json(proxy, "GET", "/config").at("generation").as_int64() >= 2; }));
  auto route = admin_json(proxy, "GET", "/routes/app");
  EXPECT_EQ(route.at("overrides").as_array().size(), 1u);
  auto [va, vb] = count_versions(proxy.port, 10);
  EXPECT_EQ(vb, 10);
  // Remove the canary cluster from the file: the override naming it is dropped.
  std::string without = replace_all(changed, "          - {cluster: app-canary, weight: 10}\n", "");
  without = without.substr(0, without.find("  - {name: app-canary"));
  write_file(proxy.config_path, without);
  ASSERT_TRUE(proxy.process->wait_for("overrides of route app dropped"));
  ASSERT_TRUE(eventually([&] { return admin_json(proxy, "GET", "/routes/app").at("overrides").as_array().empty(); }));
  auto [va2, vb2] = count_versions(proxy.port, 10);
  EXPECT_EQ(va2, 10);
}

// A reload's new cluster names are looked up off the control thread, then
// built into the table; a name that does not resolve refuses the reload.
TEST(Reload, ANewClustersNameIsLookedUpAndOneThatDoesNotResolveIsRefused) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto proxy = start_proxy(two_cluster_config(a, b, 1, 0), 1);
  const std::string ip_config = read_text_file(proxy.config_path);
  const std::string a_ip = "127.0.0.1:" + std::to_string(a.port);
  ASSERT_NE(ip_config.find(a_ip), std::string::npos);
  write_file(proxy.config_path, replace_all(ip_config, a_ip, "localhost:" + std::to_string(a.port)));
  ASSERT_TRUE(eventually([&] { return admin_json(proxy, "GET", "/config").at("generation").as_int64() == 2; }));
  EXPECT_EQ(count_versions(proxy.port, 10).first, 10);
  write_file(proxy.config_path, replace_all(ip_config, a_ip, "no-such-host.invalid:80"));
  // (A resolver that waits out an unreachable name server takes its timeouts: a longer deadline.)
  ASSERT_TRUE(proxy.process->wait_for("cannot resolve no-such-host.invalid:80", std::chrono::seconds(120)));
  ASSERT_TRUE(proxy.process->wait_for("config refused, keeping generation 2"));
  EXPECT_EQ(count_versions(proxy.port, 10).first, 10);
}

TEST(Reload, ConfigMapSymlinkSwapIsPickedUp) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  // The layout kubelet makes for a mounted ConfigMap: vane.yaml -> ..data/vane.yaml, ..data -> ..TIMESTAMP.
  std::string dir = make_temp_dir();
  std::filesystem::create_directory(dir + "/..2026_11_24_a");
  write_file(dir + "/..2026_11_24_a/vane.yaml", with_test_defaults(two_cluster_config(a, b, 1, 0)));
  std::filesystem::create_directory_symlink("..2026_11_24_a", dir + "/..data");
  std::filesystem::create_symlink("..data/vane.yaml", dir + "/vane.yaml");
  auto proxy = start_proxy_file(dir + "/vane.yaml", 1);
  EXPECT_EQ(count_versions(proxy.port, 10).first, 10);
  // kubelet writes the new version beside it and renames a fresh symlink over ..data.
  std::filesystem::create_directory(dir + "/..2026_11_24_b");
  write_file(dir + "/..2026_11_24_b/vane.yaml", with_test_defaults(two_cluster_config(a, b, 0, 1)));
  std::filesystem::create_directory_symlink("..2026_11_24_b", dir + "/..data_tmp");
  std::filesystem::rename(dir + "/..data_tmp", dir + "/..data");
  ASSERT_TRUE(eventually([&] { return admin_json(proxy, "GET", "/config").at("generation").as_int64() == 2; }));
  EXPECT_EQ(count_versions(proxy.port, 10).second, 10);
}

TEST(Reload, NewListenerIsOpenedAndRemovedOneClosed) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto proxy = start_proxy(two_cluster_config(a, b, 1, 0), 1);
  std::string text = read_text_file(proxy.config_path);
  std::string second = replace_all(text, "clusters:\n", R"(  - name: second
    address: 127.0.0.1:0
    routes: [{name: other, split: [{cluster: app-canary, weight: 1}]}]
clusters:
)");
  write_file(proxy.config_path, second);
  auto line = proxy.process->wait_for("listener second listening on");
  ASSERT_TRUE(line);
  auto second_port = port_of_line(line->substr(0, line->find(" (")));
  EXPECT_EQ(fetch(second_port, "GET", "/").header("x-version"), "b");
  EXPECT_EQ(fetch(proxy.port, "GET", "/").header("x-version"), "a");  // the first listener was kept
  write_file(proxy.config_path, text);
  ASSERT_TRUE(eventually([&] { return admin_json(proxy, "GET", "/config").at("generation").as_int64() == 3; }));
  EXPECT_THROW(fetch(second_port, "GET", "/"), std::exception);  // closed: connection refused
  EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 200);
}

TEST(Drain, UnderLoadEveryAcceptedRequestIsAnswered) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto proxy = start_proxy(two_cluster_config(a, b, 90, 10, "drain_delay: 1s\ndrain_timeout: 10s\n"), 2);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, bad_status{0}, closed{0}, refused{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      while (!stop) {
        std::unique_ptr<http_client> c;
        try {
          c = std::make_unique<http_client>(proxy.port);
          for (;;) {
            auto r = c->get("/");
            (r.status == 200 ? ok : bad_status)++;
            if (!r.keep_alive) break;  // draining: the proxy asked us to go
          }
        } catch (const boost::system::system_error& e) {
          if (e.code() == boost::asio::error::connection_refused) {
            refused++;  // listeners closed: nothing was accepted, nothing lost
            return;
          }
          // The connection closed under a request. Whether it was accepted is
          // settled below by the upstream's count: nothing may reach it unanswered.
          closed++;
        }
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return ok > 200; }));
  int status = 0;
  admin_json(proxy, "POST", "/drain", "", &status);
  EXPECT_EQ(status, 202);
  auto ready = fetch(proxy.admin_port, "GET", "/ready");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(proxy.process->wait_exit(60s), 0);
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(bad_status, 0);
  EXPECT_EQ(refused, 4);
  // Every request the proxy accepted and sent upstream was answered to its client.
  auto served = a.stats().at("requests").as_int64() + b.stats().at("requests").as_int64();
  EXPECT_EQ(served, ok.load()) << closed << " connections closed under a request";
  std::printf("[ info ] drain under load: %d answered, %d connections closed before their request was read\n",
              ok.load(), closed.load());
}

TEST(Drain, ARequestStillRunningAtTheDrainTimeoutIsCutAndTheProxyStillExitsZero) {
  // Both upstreams hold every request for a minute: the request below is
  // still running when drain_timeout ends, and its connection coroutine is
  // destroyed with the worker (it used to touch the worker's freed
  // connection list then).
  auto a = start_demo("a", {"--latency", "60s"});
  auto b = start_demo("b", {"--latency", "60s"});
  auto proxy = start_proxy(two_cluster_config(a, b, 90, 10, "drain_delay: 0s\ndrain_timeout: 1s\n"), 1);
  std::atomic<bool> cut{false};
  std::thread client([&] {
    try {
      http_client c(proxy.port);
      c.get("/");
    } catch (const std::exception&) {
      cut = true;
    }
  });
  ASSERT_TRUE(
      eventually([&] { return a.stats().at("requests").as_int64() + b.stats().at("requests").as_int64() == 1; }));
  proxy.process->signal(SIGTERM);
  ASSERT_TRUE(proxy.process->wait_for("drain_timeout reached with 1 connections open"));
  EXPECT_EQ(proxy.process->wait_exit(30s), 0) << proxy.process->output();
  client.join();
  EXPECT_TRUE(cut);
}

TEST(Drain, ASighupWhileDrainingOpensNoListener) {
  auto a = start_demo("a", {"--latency", "60s"});
  auto b = start_demo("b", {"--latency", "60s"});
  auto proxy = start_proxy(two_cluster_config(a, b, 90, 10, "drain_delay: 0s\ndrain_timeout: 60s\n"), 1);
  std::thread client([&] {  // a request held upstream keeps the drain going
    try {
      http_client c(proxy.port);
      c.get("/");
    } catch (const std::exception&) {
    }
  });
  ASSERT_TRUE(
      eventually([&] { return a.stats().at("requests").as_int64() + b.stats().at("requests").as_int64() == 1; }));
  proxy.process->signal(SIGTERM);
  ASSERT_TRUE(proxy.process->wait_for("draining: stopped accepting"));
  std::string text = read_text_file(proxy.config_path);
  write_file(proxy.config_path, replace_all(text, "clusters:\n", R"(  - name: second
    address: 127.0.0.1:0
    routes: [{name: other, split: [{cluster: app-canary, weight: 1}]}]
clusters:
)"));
  proxy.process->signal(SIGHUP);
  ASSERT_TRUE(proxy.process->wait_for("reload (SIGHUP): draining; the config is not reloaded"));
  proxy.process->signal(SIGTERM);  // a second signal stops at once
  EXPECT_EQ(proxy.process->wait_exit(30s), 0) << proxy.process->output();
  client.join();
  EXPECT_EQ(proxy.process->output().find("listener second listening on"), std::string::npos);
}

TEST(Drain, SigtermDrainsAndExitsZero) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto proxy = start_proxy(two_cluster_config(a, b), 1);
  http_client c(proxy.port);
  EXPECT_TRUE(c.get("/").keep_alive);
  proxy.process->signal(SIGTERM);
  ASSERT_TRUE(proxy.process->wait_for("draining (SIGTERM)"));
  EXPECT_EQ(proxy.process->wait_exit(30s), 0);
  EXPECT_NE(proxy.process->output().find("all connections closed"), std::string::npos);
}
