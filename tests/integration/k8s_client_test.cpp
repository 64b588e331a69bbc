// vane-control's Kubernetes client (control/k8s_client.*, k8s_informer.*)
// against vane-fake-apiserver, our own fake of the API server
// (tests/support/fake_apiserver.cpp), a separate process speaking HTTPS with a
// throwaway certificate: list+watch, bookmarks, 410 Gone in both forms,
// conflicts, patches, the /status subresource, a rotated token.
#include "control/k8s_client.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "control/k8s_informer.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tls.hpp"

namespace asio = boost::asio;
namespace json = boost::json;
using vane::http_result;
using namespace vane::control;
using namespace std::chrono_literals;

namespace {

using namespace vane::control::k8s_api;

// Polls `ready` until it holds or 15 s pass: a condition with a deadline, never a fixed sleep.
template <class F>
bool eventually(F ready) {
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (!ready()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

std::string canary(const std::string& name, const std::string& extra = "") {
  return R"({"apiVersion":"flagger.app/v1beta1","kind":"Canary","metadata":{"name":")" + name +
         R"(","namespace":"shop"},"spec":{"provider":"vane","targetRef":{"name":")" + name + "\"}" + extra + "}}";
}

// What the handler heard, "added shop/a" ..., in order.
struct heard {
  std::mutex mu;
  std::vector<std::string> events;
  void add(k8s_change c, const json::object& o) {
    std::lock_guard lock(mu);
    events.push_back(std::string(to_string(c)) + " " + k8s_key(o));
  }
  std::vector<std::string> all() {
    std::lock_guard lock(mu);
    return events;
  }
  std::size_t count(const std::string& e) {
    auto v = all();
    return static_cast<std::size_t>(std::count(v.begin(), v.end(), e));
  }
};

class K8sClient : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cert = pki_.issue("apiserver", {"localhost"});
    token_file_ = pki_.dir() + "/token";
    std::ofstream(token_file_) << "t1\n";
    fake_ = std::make_unique<vane::test::child_process>(
        VANE_FAKE_APISERVER_BIN,
        std::vector<std::string>{"--cert", cert.certificate, "--key", cert.private_key, "--token", "t1"});
    auto line = fake_->wait_for("listening on 127.0.0.1:");
    ASSERT_TRUE(line) << fake_->output();
    port_ = line->substr(line->rfind(':') + 1);
    while (!port_.empty() && (port_.back() == '\n' || port_.back() == '\r')) port_.pop_back();
    config_.host = "127.0.0.1";
    config_.port = port_;
    config_.server = "https://127.0.0.1:" + port_;
    config_.ca_pem = vane::test::read_text_file(pki_.ca_certificate());
    config_.token_file = token_file_;
    thread_ = std::thread([this] { io_.run(); });
    std::string error;
    client_ = k8s_client::make(io_.get_executor(), config_, error);
    ASSERT_TRUE(client_) << error;
  }
  void TearDown() override {
    io_.stop();
    thread_.join();
  }

  template <class T>
  T run(asio::awaitable<T> a) {
    return asio::co_spawn(io_, std::move(a), asio::use_future).get();
  }
  http_result call(const std::string& method, const std::string& target, const std::string& body = "",
                   const std::string& content_type = "") {
    return run(client_->call(method, target, body, content_type));
  }
  json::object object(const http_result& r) {
    EXPECT_TRUE(r.status / 100 == 2) << r.status << " " << r.body << r.error;
    return json::parse(r.body).as_object();
  }
  json::value watches() { return json::parse(call("GET", "/fake/watches").body); }

  // An informer on canaries in namespace shop, running on io_.
  std::unique_ptr<k8s_informer> start_informer(heard& h) {
    k8s_informer_options o;
    o.resource = canaries;
    o.namespace_name = "shop";
    o.watch_timeout = 60s;
    o.jitter = false;
    o.backoff_initial = 10ms;
    o.backoff_max = 100ms;
    auto informer =
        std::make_unique<k8s_informer>(client_, o, [&h](k8s_change c, const json::object& obj) { h.add(c, obj); });
    asio::co_spawn(io_, informer->run(), asio::detached);
    return informer;
  }

  vane::test::test_pki pki_;
  std::string token_file_, port_;
  std::unique_ptr<vane::test::child_process> fake_;
  k8s_config config_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread thread_;
  std::shared_ptr<k8s_client> client_;
};

std::string meta(const json::object& o, const char* key) {
  const auto& v = o.at("metadata").as_object().at(key);
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

TEST_F(K8sClient, ListThenWatchSeesAddedModifiedDeleted) {
  ASSERT_EQ(call("POST", canaries.path("shop"), canary("a")).status, 201);
  // An object whose namespace is not the path's is refused.
  ASSERT_EQ(call("POST", canaries.path("other"), canary("elsewhere")).status, 400);
  heard h;
  auto informer = start_informer(h);
  ASSERT_TRUE(eventually([&] { return h.count("added shop/a") == 1; }));
  ASSERT_TRUE(eventually([&] { return watches().at("open").as_int64() == 1; }));
  ASSERT_EQ(call("POST", canaries.path("shop"), canary("b")).status, 201);
  ASSERT_EQ(
      call("PATCH", canaries.path("shop", "a"), R"({"spec":{"analysis":{"interval":"1m"}}})", k8s_merge_patch).status,
      200);
  ASSERT_EQ(call("DELETE", canaries.path("shop", "b")).status, 200);
  ASSERT_TRUE(eventually([&] { return h.all().size() == 4; })) << h.all().size();
  EXPECT_EQ(h.all(), (std::vector<std::string>{"added shop/a", "added shop/b", "modified shop/a", "deleted shop/b"}));
  auto a = informer->get("shop/a");
  ASSERT_TRUE(a);
  EXPECT_EQ(json::serialize(a->at("spec").at("analysis")), R"({"interval":"1m"})");
  EXPECT_FALSE(informer->get("shop/b"));
  auto stats = informer->stats();
  EXPECT_EQ(stats.lists, 1U);
  EXPECT_EQ(stats.events, 3U);
  EXPECT_EQ(stats.failures, 0U) << stats.last_error;
  // The watch started from the list's resourceVersion, with bookmarks and a timeout.
  auto requests = json::parse(call("GET", "/fake/requests").body).as_array();
  bool watched = false;
  for (const auto& r : requests) {
    std::string target(r.at("target").as_string());
    if (target.find("watch=true") == std::string::npos) continue;
    watched = true;
    EXPECT_EQ(target,
              canaries.path("shop") + "?watch=true&allowWatchBookmarks=true&resourceVersion=2&timeoutSeconds=60");
    EXPECT_EQ(r.at("token").as_string(), "t1");
  }
  EXPECT_TRUE(watched);
}

TEST_F(K8sClient, BookmarkMovesTheResourceVersion) {
  ASSERT_EQ(call("POST", canaries.path("shop"), canary("a")).status, 201);
  heard h;
  auto informer = start_informer(h);
  ASSERT_TRUE(eventually([&] { return watches().at("open").as_int64() == 1; }));
  const std::string listed = informer->stats().resource_version;
  // A change to another type moves the store's version; the canaries' watch hears nothing of it...
  auto d = object(call("POST", deployments.path("shop"), R"({"metadata":{"name":"podinfo"},"spec":{"replicas":1}})"));
  EXPECT_EQ(informer->stats().resource_version, listed);
  // ... until a bookmark says how far it is.
  ASSERT_EQ(call("POST", "/fake/bookmark").status, 200);
  ASSERT_TRUE(eventually([&] { return informer->stats().bookmarks == 1; }));
  EXPECT_EQ(informer->stats().resource_version, meta(d, "resourceVersion"));
  EXPECT_EQ(h.all(), (std::vector<std::string>{"added shop/a"}));
}

// While the client is away (its watch ended, the next one held), objects
// change and the history is compacted: its next watch gets 410 Gone and a
// list brings the cache up to date, each change told once and nothing told
// of what did not change.
TEST_F(K8sClient, GoneInTheStreamListsAgainWithoutLossOrRepeat) {
  for (const char* n : {"a", "b", "c"}) ASSERT_EQ(call("POST", canaries.path("shop"), canary(n)).status, 201);
  heard h;
  auto informer = start_informer(h);
  ASSERT_TRUE(eventually([&] { return watches().at("open").as_int64() == 1; }));
  ASSERT_EQ(call("POST", "/fake/hold-watches").status, 200);
  ASSERT_EQ(call("POST", "/fake/end-watches").status, 200);  // as its timeout would
  ASSERT_TRUE(eventually([&] { return watches().at("held").as_int64() == 1; }));
  // Away: a deleted, b changed, d added, c untouched; the history forgotten.
  ASSERT_EQ(call("DELETE", canaries.path("shop", "a")).status, 200);
  ASSERT_EQ(call("PATCH", canaries.path("shop", "b"), R"({"spec":{"skipAnalysis":true}})", k8s_merge_patch).status,
            200);
  ASSERT_EQ(call("POST", canaries.path("shop"), canary("d")).status, 201);
  ASSERT_EQ(call("POST", "/fake/compact").status, 200);
  ASSERT_EQ(call("POST", "/fake/release-watches").status, 200);
  ASSERT_TRUE(eventually([&] { return informer->stats().lists == 2; }));
  ASSERT_TRUE(eventually([&] { return watches().at("open").as_int64() == 1; }));
  EXPECT_EQ(h.all(), (std::vector<std::string>{"added shop/a", "added shop/b", "added shop/c", "modified shop/b",
                                               "added shop/d", "deleted shop/a"}));
  EXPECT_EQ(informer->stats().gone, 1U);
  // The watch the test ended had lasted under a second with nothing in it, most likely: as client-go,
  // the informer takes that for a failure and backs off before watching again.
  const auto failures = informer->stats().failures;
  EXPECT_TRUE(failures == 0 ||
              (failures == 1 && informer->stats().last_error.find("ended within a second") != std::string::npos))
      << failures << ": " << informer->stats().last_error;
  std::vector<std::string> keys;
  for (const auto& o : informer->objects()) keys.push_back(k8s_key(o));
  EXPECT_EQ(keys, (std::vector<std::string>{"shop/b", "shop/c", "shop/d"}));
  // And the watch goes on from the new list.
  ASSERT_EQ(call("DELETE", canaries.path("shop", "c")).status, 200);
  ASSERT_TRUE(eventually([&] { return h.count("deleted shop/c") == 1; }));
}

TEST_F(K8sClient, GoneAsHttpStatusListsAgainWithoutLossOrRepeat) {
  for (const char* n : {"a", "b"}) ASSERT_EQ(call("POST", canaries.path("shop"), canary(n)).status, 201);
  heard h;
  auto informer = start_informer(h);
  ASSERT_TRUE(eventually([&] { return watches().at("open").as_int64() == 1; }));
  ASSERT_EQ(call("POST", "/fake/hold-watches").status, 200);
  ASSERT_EQ(call("POST", "/fake/end-watches").status, 200);
  ASSERT_TRUE(eventually([&] { return watches().at("held").as_int64() == 1; }));
  ASSERT_EQ(call("DELETE", canaries.path("shop", "a")).status, 200);
  ASSERT_EQ(call("POST", canaries.path("shop"), canary("c")).status, 201);
  ASSERT_EQ(call("POST", "/fake/fail-watches?count=1").status, 200);
  ASSERT_EQ(call("POST", "/fake/release-watches").status, 200);
  ASSERT_TRUE(eventually([&] { return informer->stats().lists == 2; }));
  ASSERT_TRUE(eventually([&] { return watches().at("open").as_int64() == 1; }));
  EXPECT_EQ(h.all(), (std::vector<std::string>{"added shop/a", "added shop/b", "added shop/c", "deleted shop/a"}));
  EXPECT_EQ(informer->stats().gone, 1U);
  // And an ERROR event on an open watch (expire-watches) the same way.
  ASSERT_EQ(call("POST", "/fake/expire-watches").status, 200);
  ASSERT_TRUE(eventually([&] { return informer->stats().lists == 3; }));
  EXPECT_EQ(informer->stats().gone, 2U);
  EXPECT_EQ(h.all().size(), 4U);
}

TEST_F(K8sClient, RefusedWatchIsRetriedWithBackoffAndSaysWhy) {
  ASSERT_EQ(call("POST", canaries.path("shop"), canary("a")).status, 201);
  heard h;
  auto informer = start_informer(h);
  ASSERT_TRUE(eventually([&] { return watches().at("open").as_int64() == 1; }));
  ASSERT_EQ(call("PUT", "/fake/token", "t2").status, 200);  // our token no longer works
  ASSERT_EQ(call("POST", "/fake/end-watches").status, 200);
  ASSERT_TRUE(eventually([&] { return informer->stats().failures >= 2; }));
  EXPECT_NE(informer->stats().last_error.find("HTTP 401 Unauthorized"), std::string::npos)
      << informer->stats().last_error;
  std::ofstream(token_file_) << "t2\n";
  client_->tokens().reread_after(0s);
  ASSERT_TRUE(eventually([&] { return watches().at("open").as_int64() == 1; }));
  ASSERT_EQ(call("POST", canaries.path("shop"), canary("b")).status, 201);
  ASSERT_TRUE(eventually([&] { return h.count("added shop/b") == 1; }));
  EXPECT_EQ(informer->stats().lists, 1U);
}

TEST_F(K8sClient, StaleResourceVersionIs409AndUpdateRetries) {
  auto created = object(call("POST", canaries.path("shop"), canary("a")));
  // Someone else writes after our read: our PUT with the old resourceVersion is refused.
  ASSERT_EQ(
      call("PATCH", canaries.path("shop", "a"), R"({"metadata":{"labels":{"by":"them"}}})", k8s_merge_patch).status,
      200);
  auto stale = call("PUT", canaries.path("shop", "a"), json::serialize(created));
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(k8s_answer_text(stale).substr(0, 18), "HTTP 409 Conflict:");
  // k8s_update reads again and applies the change again; the other writer's change lands between our first
  // read and our first PUT (made on an io_context of its own, from inside the change).
  int calls = 0;
  auto change = [&](json::object& o) {
    if (++calls == 1) {
      asio::io_context other;
      std::string error;
      auto them = k8s_client::make(other.get_executor(), config_, error);
      auto f = asio::co_spawn(
          other, them->call("PATCH", canaries.path("shop", "a"), R"({"spec":{"theirs":1}})", k8s_merge_patch),
          asio::use_future);
      other.run();
      EXPECT_EQ(f.get().status, 200);
    }
    o["spec"].as_object()["ours"] = calls;
    return true;
  };
  auto result = run(k8s_update(*client_, canaries.path("shop", "a"), change));
  EXPECT_TRUE(result.written) << k8s_answer_text(result.answer);
  EXPECT_EQ(result.tries, 2);
  auto now = object(call("GET", canaries.path("shop", "a")));
  EXPECT_EQ(now.at("spec").at("theirs"), 1);
  EXPECT_EQ(now.at("spec").at("ours"), 2);
  // A custom resource's PUT must name a resourceVersion.
  now["metadata"].as_object().erase("resourceVersion");
  EXPECT_EQ(call("PUT", canaries.path("shop", "a"), json::serialize(now)).status, 422);
}

TEST_F(K8sClient, MergePatchJsonPatchAndNoStrategicMergeOnCustomResources) {
  object(call("POST", deployments.path("shop"),
              R"({"metadata":{"name":"podinfo","labels":{"app":"podinfo","old":"x"}},"spec":{"replicas":3}})"));
  auto merged = object(call("PATCH", deployments.path("shop", "podinfo"),
                            R"({"metadata":{"labels":{"old":null}},"spec":{"replicas":0}})", k8s_merge_patch));
  EXPECT_EQ(json::serialize(merged.at("metadata").at("labels")), R"({"app":"podinfo"})");
  EXPECT_EQ(merged.at("spec").at("replicas"), 0);
  auto patched = object(call("PATCH", deployments.path("shop", "podinfo"),
                             R"([{"op":"test","path":"/spec/replicas","value":0},)"
                             R"({"op":"replace","path":"/spec/replicas","value":2}])",
                             k8s_json_patch));
  EXPECT_EQ(patched.at("spec").at("replicas"), 2);
  EXPECT_EQ(call("PATCH", deployments.path("shop", "podinfo"), R"([{"op":"test","path":"/spec/replicas","value":9}])",
                 k8s_json_patch)
                .status,
            422);
  // A resourceVersion in a patch is a precondition.
  EXPECT_EQ(
      call("PATCH", deployments.path("shop", "podinfo"), R"({"metadata":{"resourceVersion":"1"}})", k8s_merge_patch)
          .status,
      409);
  object(call("POST", canaries.path("shop"), canary("a")));
  auto smp = call("PATCH", canaries.path("shop", "a"), R"({"spec":{}})", "application/strategic-merge-patch+json");
  EXPECT_EQ(smp.status, 415);
  EXPECT_NE(k8s_answer_text(smp).find("UnsupportedMediaType"), std::string::npos);
}

TEST_F(K8sClient, StatusSubresourceRules) {
  // Status is not set on create ...
  auto c = object(call("POST", canaries.path("shop"), canary("a", R"(},"status":{"phase":"Succeeded")")));
  EXPECT_FALSE(c.contains("status"));
  EXPECT_EQ(meta(c, "generation"), "1");
  // ... nor by a write to the main resource, which changes the rest (and the generation) ...
  c["status"] = json::object{{"phase", "Progressing"}};
  c["spec"].as_object()["skipAnalysis"] = true;
  auto main = object(call("PUT", canaries.path("shop", "a"), json::serialize(c)));
  EXPECT_FALSE(main.contains("status"));
  EXPECT_EQ(main.at("spec").at("skipAnalysis"), true);
  EXPECT_EQ(meta(main, "generation"), "2");
  // ... and a write to /status changes only the status, not the generation.
  main["status"] = json::object{{"phase", "Initialized"}, {"canaryWeight", 0}};
  main["spec"].as_object()["skipAnalysis"] = false;
  main["metadata"].as_object()["labels"] = json::object{{"x", "y"}};
  auto status = object(call("PUT", canaries.path("shop", "a", "status"), json::serialize(main)));
  EXPECT_EQ(status.at("status").at("phase"), "Initialized");
  EXPECT_EQ(status.at("spec").at("skipAnalysis"), true);
  EXPECT_FALSE(status.at("metadata").as_object().contains("labels"));
  EXPECT_EQ(meta(status, "generation"), "2");
  // A stale resourceVersion on /status is a conflict too; a merge patch of /status applies.
  EXPECT_EQ(call("PUT", canaries.path("shop", "a", "status"), json::serialize(main)).status, 409);
  auto patched =
      object(call("PATCH", canaries.path("shop", "a", "status"), R"({"status":{"canaryWeight":10}})", k8s_merge_patch));
  EXPECT_EQ(json::serialize(patched.at("status")), R"({"phase":"Initialized","canaryWeight":10})");
  // k8s_update through /status.
  auto result = run(k8s_update(*client_, canaries.path("shop", "a", "status"), [](json::object& o) {
    o["status"].as_object()["phase"] = "Progressing";
    return true;
  }));
  EXPECT_TRUE(result.written) << k8s_answer_text(result.answer);
  EXPECT_EQ(object(call("GET", canaries.path("shop", "a"))).at("status").at("phase"), "Progressing");
  // Types without a status have no /status.
  object(call("POST", configmaps.path("shop"), R"({"metadata":{"name":"cm"},"data":{"k":"v"}})"));
  EXPECT_EQ(call("GET", configmaps.path("shop", "cm", "status")).status, 404);
}

TEST_F(K8sClient, RotatedTokenIsReadAgain) {
  EXPECT_EQ(call("GET", canaries.path("shop")).status, 200);
  std::ofstream(token_file_) << "t2\n";  // the kubelet rotated it, and the server takes only the new one
  ASSERT_EQ(call("PUT", "/fake/token", "t2").status, 200);
  // Within the minute the old token is still sent; once it has passed, the file is read again.
  EXPECT_EQ(call("GET", canaries.path("shop")).status, 401);
  client_->tokens().reread_after(0s);
  EXPECT_EQ(call("GET", canaries.path("shop")).status, 200);
  auto requests = json::parse(call("GET", "/fake/requests").body).as_array();
  ASSERT_EQ(requests.size(), 3U);
  EXPECT_EQ(requests[2].at("token"), "t2");
}

TEST_F(K8sClient, WrongCertificateAuthorityIsRefused) {
  vane::test::test_pki other("another CA");
  k8s_config c = config_;
  c.ca_pem = vane::test::read_text_file(other.ca_certificate());
  std::string error;
  auto client = k8s_client::make(io_.get_executor(), c, error);
  ASSERT_TRUE(client) << error;
  auto r = run(client->call("GET", canaries.path("shop")));
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("TLS handshake"), std::string::npos) << r.error;
  c.ca_pem = "not a certificate";
  EXPECT_FALSE(k8s_client::make(io_.get_executor(), c, error));
  EXPECT_NE(error.find("CA"), std::string::npos);
}

// Odd answers read without throwing: each is a reason, never a silent stop.
TEST(K8sInformer, OddAnswersAreReasons) {
  k8s_informer_options o;
  o.resource = canaries;
  std::vector<std::string> told;
  k8s_informer informer(nullptr, o, [&](k8s_change c, const json::object& obj) {
    told.push_back(std::string(to_string(c)) + " " + k8s_key(obj));
  });
  EXPECT_EQ(informer.apply_list("<html>"), "the list is not JSON (syntax error): <html>");
  EXPECT_EQ(informer.apply_list(R"({"items":{}})").substr(0, 25), "a list without items: {\"i");
  EXPECT_EQ(informer.apply_list(R"({"items":[]})"), "a list without metadata.resourceVersion");
  EXPECT_EQ(informer.apply_list(R"({"metadata":{"resourceVersion":"5"},"items":[{"metadata":{"name":"a"}}]})"), "");
  std::string why;
  using line = k8s_informer::line_outcome;
  EXPECT_EQ(informer.apply_watch_line("{", why), line::bad);
  EXPECT_EQ(why.substr(0, 22), "a watch line is not JS");
  EXPECT_EQ(informer.apply_watch_line(R"({"type":"ADDED"})", why), line::bad);
  EXPECT_EQ(informer.apply_watch_line(R"({"type":"SOMETHING","object":{}})", why), line::bad);
  EXPECT_EQ(why, "a watch event of unknown type SOMETHING");
  EXPECT_EQ(informer.apply_watch_line(R"({"type":"BOOKMARK","object":{"metadata":{}}})", why), line::bad);
  EXPECT_EQ(informer.apply_watch_line(R"({"type":"ERROR","object":{"code":500,"message":"etcd down"}})", why),
            line::bad);
  EXPECT_EQ(why, "the watch sent an ERROR: etcd down");
  EXPECT_EQ(informer.apply_watch_line(R"({"type":"ERROR","object":{"kind":"Status","code":410}})", why), line::gone);
  EXPECT_EQ(
      informer.apply_watch_line(R"({"type":"MODIFIED","object":{"metadata":{"name":"a","resourceVersion":"6"}}})", why),
      line::applied);
  EXPECT_EQ(informer.apply_watch_line(R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}})", why),
            line::applied);
  EXPECT_EQ(informer.stats().resource_version, "9");
  EXPECT_EQ(told, (std::vector<std::string>{"added a", "modified a"}));
}

}  // namespace
