// vane-proxy through real sockets: the real binary in front of real vane-demo
// upstreams on 127.0.0.1, ports chosen by the OS. Assertions are on counts,
// statuses and bytes; never on time.
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <future>
#include <sstream>
#include <thread>

#include "demo/pattern.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/http_client.hpp"

using namespace vane::test;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

std::string split_config(const demo_instance& primary, const demo_instance& canary) {
  std::string yaml = read_text_file(source_dir() + "/configs/split.yaml");
  yaml = replace_all(yaml, "127.0.0.1:8080", "127.0.0.1:0");
  yaml = replace_all(yaml, "127.0.0.1:9901", "127.0.0.1:0");
  yaml = replace_all(yaml, "drain_delay: 5s", "drain_delay: 0s");
  yaml = replace_all(yaml, "127.0.0.1:9898", primary.address());
  return replace_all(yaml, "127.0.0.1:9899", canary.address());
}

std::string one_cluster_config(const std::string& endpoints, const std::string& cluster_extra = "",
                               const std::string& route_extra = "", const std::string& top = "") {
  return top + R"(
listeners:
  - name: http
    address: 127.0.0.1:0
    routes:
      - name: r
        split: [{cluster: c, weight: 1}]
)" + route_extra +
         R"(
clusters:
  - name: c
    endpoints: [)" +
         endpoints + "]\n" + cluster_extra;
}

std::int64_t stat(const demo_instance& d, const char* key) { return d.stats().at(key).as_int64(); }

}  // namespace

TEST(Proxy, SplitFollowsWeightsWithinOnePoint) {
  auto primary = start_demo("v1");
  auto canary = start_demo("v2");
  auto proxy = start_proxy(split_config(primary, canary), 2);
  // Four keep-alive clients taking turns, so both workers and several connections take part.
  std::vector<std::unique_ptr<http_client>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(std::make_unique<http_client>(proxy.port));
  int v1 = 0, v2 = 0, other = 0;
  for (int i = 0; i < 10'000; ++i) {
    auto r = clients[i % 4]->get("/");
    ASSERT_EQ(r.status, 200);
    auto version = r.header("x-version");
    (version == "v1" ? v1 : version == "v2" ? v2 : other)++;
  }
  EXPECT_EQ(other, 0);
  EXPECT_NEAR(v1, 9000, 100);
  EXPECT_NEAR(v2, 1000, 100);
  EXPECT_EQ(stat(primary, "requests"), v1);
  EXPECT_EQ(stat(canary, "requests"), v2);
}

TEST(Proxy, KeepAliveReusesUpstreamConnections) {
  auto primary = start_demo("v1");
  auto canary = start_demo("v2");
  auto proxy = start_proxy(split_config(primary, canary), 1);
  http_client client(proxy.port);
  for (int i = 0; i < 200; ++i) {
    auto r = client.get("/");
    ASSERT_EQ(r.status, 200);
    ASSERT_TRUE(r.keep_alive);
  }
  // One client connection, sequential requests: one upstream connection per cluster, reused.
  EXPECT_EQ(stat(primary, "requests"), 180);
  EXPECT_EQ(stat(canary, "requests"), 20);
  EXPECT_EQ(stat(primary, "service_connections"), 1);
  EXPECT_EQ(stat(canary, "service_connections"), 1);
}

TEST(Proxy, EndpointsOfAClusterTakeTurns) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  auto proxy = start_proxy(one_cluster_config(a.address() + ", " + b.address()), 1);
  http_client client(proxy.port);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(client.get("/").status, 200);
  EXPECT_EQ(stat(a, "requests"), 50);
  EXPECT_EQ(stat(b, "requests"), 50);
  EXPECT_EQ(stat(a, "service_connections"), 1);
  EXPECT_EQ(stat(b, "service_connections"), 1);
}

TEST(Proxy, RoutesMatchHostAndPathFirstMatchWins) {
  auto primary = start_demo("primary");
  auto primary2 = start_demo("primary");
  auto canary = start_demo("canary");
  std::string yaml = read_text_file(source_dir() + "/configs/routes.yaml");
  yaml = replace_all(yaml, "127.0.0.1:8080", "127.0.0.1:0");
  yaml = replace_all(yaml, "127.0.0.1:9901", "127.0.0.1:0");
  yaml = replace_all(yaml, "drain_delay: 5s", "drain_delay: 0s");
  yaml = replace_all(yaml, "127.0.0.1:9898", primary.address());
  yaml = replace_all(yaml, "127.0.0.1:9897", primary2.address());
  yaml = replace_all(yaml, "127.0.0.1:9899", canary.address());
  auto proxy = start_proxy(yaml, 1);
  auto version_for = [&](const std::string& host, const std::string& target) {
    auto r = fetch(proxy.port, "GET", target, {{"host", host}});
    return r.status == 200 ? r.header("x-version") : std::to_string(r.status);
  };
  EXPECT_EQ(version_for("api.example.com", "/v2/users/42"), "canary");  // regex route
  EXPECT_EQ(version_for("API.example.com:8080", "/v2/users/42?x=1"), "canary");
  EXPECT_EQ(version_for("api.example.com", "/v2/users/42/extra"), "primary");  // not a full match: next route
  EXPECT_EQ(version_for("a.tenants.example.com", "/anything"), "primary");
  EXPECT_EQ(version_for("tenants.example.com", "/anything"), "404");  // wildcard needs a label
  EXPECT_EQ(version_for("other.test", "/healthz"), "primary");
  EXPECT_EQ(version_for("other.test", "/healthz/x"), "404");
  auto r = fetch(proxy.port, "GET", "/", {{"host", "other.test"}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "no route\n");
}

TEST(Proxy, HopByHopHeadersAreRemovedAndForwardingHeadersSet) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(one_cluster_config(up.address()), 1);
  auto r = fetch(proxy.port, "GET", "/headers",
                 {{"connection", "keep-alive, x-secret"},
                  {"x-secret", "1"},
                  {"keep-alive", "timeout=5"},
                  {"proxy-connection", "keep-alive"},
                  {"te", "trailers"},
                  {"upgrade", "websocket"},
                  {"x-forwarded-for", "203.0.113.9"},
                  {"x-kept", "yes"}});
  ASSERT_EQ(r.status, 200);
  auto headers = json::parse(r.body).at("headers").as_object();
  for (const char* gone : {"connection", "x-secret", "keep-alive", "proxy-connection", "te", "upgrade"})
    EXPECT_FALSE(headers.contains(gone)) << gone;
  EXPECT_EQ(headers.at("x-kept").as_string(), "yes");
  // trust_incoming: false (the default) replaces what the client claimed.
  EXPECT_EQ(headers.at("x-forwarded-for").as_string(), "127.0.0.1");
  EXPECT_EQ(headers.at("x-forwarded-proto").as_string(), "http");
  EXPECT_EQ(headers.at("via").as_string(), "1.1 vane");
}

TEST(Proxy, TrustedForwardedForIsAppendedTo) {
  auto up = start_demo("v1");
  std::string yaml = replace_all(one_cluster_config(up.address()), "address: 127.0.0.1:0",
                                 "address: 127.0.0.1:0\n    forwarded: {trust_incoming: true}");
  auto proxy = start_proxy(yaml, 1);
  auto r = fetch(proxy.port, "GET", "/headers", {{"x-forwarded-for", "203.0.113.9"}, {"x-forwarded-proto", "https"}});
  auto headers = json::parse(r.body).at("headers").as_object();
  EXPECT_EQ(headers.at("x-forwarded-for").as_string(), "203.0.113.9, 127.0.0.1");
  EXPECT_EQ(headers.at("x-forwarded-proto").as_string(), "https");
}

TEST(Proxy, ResponseHopByHopHeadersAreRemoved) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(one_cluster_config(up.address()), 1);
  raw_connection c(proxy.port);
  c.send("GET /bytes/5?chunked=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string got = c.read_until("0\r\n\r\n");
  EXPECT_NE(got.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("\r\n5\r\n"), std::string::npos) << got;
}

TEST(Proxy, DeadUpstreamIs502) {
  auto proxy = start_proxy(one_cluster_config("127.0.0.1:" + std::to_string(unused_port())), 1);
  http_client client(proxy.port);
  auto r = client.get("/");
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(r.body, "upstream connect error\n");
  EXPECT_TRUE(r.keep_alive);  // a local reply keeps the client connection
  EXPECT_EQ(client.get("/").status, 502);
}

TEST(Proxy, SlowUpstreamIs504) {
  auto up = start_demo("v1", {"--latency", "5s"});
  auto proxy = start_proxy(one_cluster_config(up.address(), "", "        timeout: 100ms\n"), 1);
  auto r = fetch(proxy.port, "GET", "/");
  EXPECT_EQ(r.status, 504);
  EXPECT_EQ(r.body, "upstream request timeout\n");
}

TEST(Proxy, OverflowIs503) {
  auto up = start_demo("v1", {"--latency", "1s"});
  auto proxy = start_proxy(one_cluster_config(up.address(), "    max_connections: 1\n    max_pending: 0\n"), 1);
  // The first request holds the only connection (the upstream has it); nothing may wait: the next one overflows.
  auto first = std::async(std::launch::async, [&] { return fetch(proxy.port, "GET", "/first").status; });
  ASSERT_TRUE(eventually([&] { return stat(up, "requests") == 1; }));
  auto r = fetch(proxy.port, "GET", "/second");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "upstream overflow\n");
  EXPECT_EQ(first.get(), 200);
  EXPECT_EQ(stat(up, "requests"), 1);
}

TEST(Proxy, PendingRequestsWaitForAConnection) {
  auto up = start_demo("v1", {"--latency", "200ms"});
  auto proxy = start_proxy(one_cluster_config(up.address(), "    max_connections: 1\n    max_pending: 10\n"), 1);
  std::vector<std::future<int>> results;
  for (int i = 0; i < 5; ++i)
    results.push_back(std::async(std::launch::async, [&] { return fetch(proxy.port, "GET", "/").status; }));
  for (auto& f : results) EXPECT_EQ(f.get(), 200);
  EXPECT_EQ(stat(up, "requests"), 5);
  // At most one connection at a time, each handed on to the next waiter: one upstream connection in all.
  EXPECT_EQ(stat(up, "service_connections"), 1);
}

TEST(Proxy, Http10AndConnectionCloseAreHonoured) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(one_cluster_config(up.address()), 1);
  {
    raw_connection c(proxy.port);
    c.send("GET / HTTP/1.0\r\n\r\n");  // HTTP/1.0 needs no Host
    std::string got = c.read_all();    // the proxy closes after the response
    EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
    EXPECT_NE(got.find("\"version\":\"v1\""), std::string::npos);
  }
  {
    // An HTTP/1.0 client gets a chunked upstream body unframed, ended by close.
    raw_connection c(proxy.port);
    c.send("GET /bytes/1000?chunked=1 HTTP/1.0\r\n\r\n");
    std::string got = c.read_all();
    EXPECT_EQ(got.find("Transfer-Encoding"), std::string::npos) << got;
    auto body = got.substr(got.find("\r\n\r\n") + 4);
    ASSERT_EQ(body.size(), 1000u);
    for (std::size_t i = 0; i < body.size(); ++i) ASSERT_EQ(body[i], vane::demo::pattern_byte(i));
  }
  {
    raw_connection c(proxy.port);
    c.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::string got = c.read_all();
    EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos) << got;
  }
  {
    // HTTP/1.0 keep-alive is honoured too.
    raw_connection c(proxy.port);
    c.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    std::string got = c.read_all();
    std::size_t responses = 0;
    for (std::size_t p = 0; (p = got.find("HTTP/1.1 200 OK", p)) != std::string::npos; ++p) ++responses;
    EXPECT_EQ(responses, 2u) << got;
  }
}

TEST(Proxy, ExpectContinueIsAnswered) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(one_cluster_config(up.address()), 1);
  raw_connection c(proxy.port);
  c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  std::string interim = c.read_until("\r\n\r\n");
  ASSERT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  c.send("hello");
  std::string got = c.read_until("}\n");
  EXPECT_NE(got.find("HTTP/1.1 200 OK"), std::string::npos) << got;
  EXPECT_NE(got.find("\"received\":5"), std::string::npos) << got;
}

TEST(Proxy, PipelinedRequestsAreAnsweredInOrder) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(one_cluster_config(up.address()), 1);
  raw_connection c(proxy.port);
  c.send(
      "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\nGET /three HTTP/1.1\r\nHost: x\r\n"
      "Connection: close\r\n\r\n");
  std::string got = c.read_all();
  auto one = got.find("\"path\":\"/one\""), two = got.find("\"path\":\"/two\""),
       three = got.find("\"path\":\"/three\"");
  ASSERT_NE(three, std::string::npos) << got;
  EXPECT_LT(one, two);
  EXPECT_LT(two, three);
}

// A client that pipelines requests and stops reading fills the sockets: the
// proxy then waits and asks the upstream for no more (no buffering without
// end), and once the client reads again every answer comes whole and in
// order, the last ones too, on a connection that stays open.
TEST(Proxy, AClientThatStopsReadingGetsEveryPipelinedAnswerWholeAndInOrder) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(one_cluster_config(up.address()), 1);
  raw_connection c(proxy.port);
  const int window = 256 * 1024;
  ASSERT_EQ(::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &window, sizeof window), 0);
  // More answers than the proxy's socket and this one can hold (net.ipv4.tcp_wmem's
  // largest send buffer, and this receive buffer, which Linux doubles).
  std::size_t wmem_max = 4U << 20;
  {
    std::istringstream in(read_text_file("/proc/sys/net/ipv4/tcp_wmem"));
    std::size_t low = 0, usual = 0;
    in >> low >> usual >> wmem_max;
  }
  constexpr std::size_t size = 12000;
  const std::size_t answers =
      std::min<std::size_t>((wmem_max + 2 * static_cast<std::size_t>(window)) / size + 100, 4000);
  std::string requests;
  for (std::size_t i = 0; i < answers; ++i)
    requests += "GET /bytes/" + std::to_string(size) + "?n=" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  c.send(requests);
  // Unread, the answers fill both sockets; the proxy then waits, and asks the
  // upstream for no more (it does not buffer without end).
  std::int64_t last = -1;
  ASSERT_TRUE(eventually([&] {
    const std::int64_t now = stat(up, "requests");
    const bool still = now == last && now > 0;
    last = now;
    return still;
  }));
  EXPECT_LT(last, static_cast<std::int64_t>(answers));

  std::string got;
  std::size_t expected = 0;  // once the first head is known: every answer is the same size
  const auto until = std::chrono::steady_clock::now() + 60s;
  while ((expected == 0 || got.size() < expected) && std::chrono::steady_clock::now() < until) {
    pollfd p{c.fd(), POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    char chunk[65536];
    const ssize_t n = ::recv(c.fd(), chunk, sizeof chunk, 0);
    if (n <= 0) break;
    got.append(chunk, static_cast<std::size_t>(n));
    if (expected == 0)
      if (const std::size_t e = got.find("\r\n\r\n"); e != std::string::npos) expected = (e + 4 + size) * answers;
  }
  ASSERT_EQ(got.size(), expected);
  std::size_t at = 0, whole = 0;
  while (at < got.size()) {
    const std::size_t head_end = got.find("\r\n\r\n", at);
    ASSERT_NE(head_end, std::string::npos) << "answer " << whole << " cut in its head";
    std::string head = got.substr(at, head_end - at);
    ASSERT_EQ(head.rfind("HTTP/1.1 200 OK", 0), 0U) << head;
    for (char& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    ASSERT_NE(head.find("content-length: " + std::to_string(size)), std::string::npos) << head;
    const std::size_t body = head_end + 4;
    ASSERT_LE(body + size, got.size()) << "answer " << whole << " cut in its body";
    for (std::size_t i = 0; i < size; ++i)
      if (got[body + i] != vane::demo::pattern_byte(i)) FAIL() << "answer " << whole << " byte " << i;
    at = body + size;
    ++whole;
  }
  EXPECT_EQ(whole, answers);
  EXPECT_EQ(stat(up, "requests"), static_cast<std::int64_t>(answers));
}

TEST(Proxy, BadRequestsGetA4xxAndTheProxyKeepsServing) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(
      one_cluster_config(up.address(), "", "", "limits: {max_request_headers: 1KiB, max_headers: 10, max_body: 10}\n"),
      1);
  struct bad_case {
    std::string request;
    std::string status;
  };
  std::vector<bad_case> cases{
      {"GARBAGE\r\n\r\n", "400"},
      {"GET / HTTP/1.1\r\n\r\n", "400"},                        // no Host
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"},  // two Hosts
      {"GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(2000, 'a') + "\r\n\r\n", "431"},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world", "413"},
  };
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 11; ++i) many += "X-" + std::to_string(i) + ": 1\r\n";
  cases.push_back({many + "\r\n", "431"});
  for (const auto& bc : cases) {
    raw_connection c(proxy.port);
    c.send(bc.request);
    std::string got = c.read_all();
    EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 " + bc.status) << bc.request.substr(0, 60);
  }
  EXPECT_EQ(stat(up, "requests"), 0);  // none reached the upstream
  EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 200);
}

TEST(Proxy, LargeBodiesStreamBothWaysWithBoundedMemory) {
  // 1 GiB each way by default (VANE_TEST_BIG_BYTES overrides, e.g. under sanitizers).
  std::uint64_t total = 1ull << 30;
  if (const char* env = std::getenv("VANE_TEST_BIG_BYTES")) total = std::stoull(env);
  auto up = start_demo("v1");
  auto proxy = start_proxy(one_cluster_config(up.address(), "", "", "limits: {max_body: 4GiB}\n"), 1);

  // Upload with Content-Length, then with chunked framing; the demo reports size and checksum.
  vane::demo::fnv1a expected;
  std::vector<char> block(64 * 1024);
  for (bool chunked : {false, true}) {
    raw_connection c(proxy.port);
    std::string head = "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
    head += chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "Content-Length: " + std::to_string(total) + "\r\n\r\n";
    c.send(head);
    vane::demo::fnv1a sum;
    for (std::uint64_t sent = 0; sent < total;) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), total - sent));
      for (std::size_t i = 0; i < n; ++i) block[i] = vane::demo::pattern_byte(sent + i);
      sum.update(block.data(), n);
      if (chunked) {
        char size_line[32];
        int len = std::snprintf(size_line, sizeof size_line, "%zx\r\n", n);
        c.send(size_line, static_cast<std::size_t>(len));
      }
      c.send(block.data(), n);
      if (chunked) c.send("\r\n");
      sent += n;
    }
    if (chunked) c.send("0\r\n\r\n");
    expected = sum;
    std::string got = c.read_all();
    ASSERT_NE(got.find("HTTP/1.1 200 OK"), std::string::npos) << got.substr(0, 300);
    EXPECT_NE(got.find("\"received\":" + std::to_string(total)), std::string::npos) << got;
    EXPECT_NE(got.find("\"checksum\":\"" + std::to_string(expected.state) + "\""), std::string::npos) << got;
  }

  // Download with Content-Length: count and check every byte as it streams.
  {
    raw_connection c(proxy.port);
    c.send("GET /bytes/" + std::to_string(total) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::string head = c.read_until("\r\n\r\n");
    auto end = head.find("\r\n\r\n");
    ASSERT_NE(end, std::string::npos);
    EXPECT_NE(head.find("Content-Length: " + std::to_string(total)), std::string::npos) << head.substr(0, end);
    std::uint64_t received = 0;
    bool bytes_ok = true;
    auto check = [&](const char* data, std::size_t n) {
      for (std::size_t i = 0; i < n && bytes_ok; ++i) bytes_ok = data[i] == vane::demo::pattern_byte(received + i);
      received += n;
    };
    check(head.data() + end + 4, head.size() - end - 4);
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
      if (n <= 0) break;
      check(buf, static_cast<std::size_t>(n));
    }
    EXPECT_EQ(received, total);
    EXPECT_TRUE(bytes_ok);
  }
#ifndef VANE_SANITIZE
  // One relay buffer per direction, whatever the body size (sanitizer builds keep quarantine memory).
  auto peak_kib = peak_rss_kib(proxy.process->pid());
  EXPECT_LT(peak_kib, 64u * 1024) << "peak RSS " << peak_kib << " KiB";
  std::printf("[ info ] vane-proxy peak RSS after 2x%llu bytes up and 1x down: %llu KiB\n",
              static_cast<unsigned long long>(total), static_cast<unsigned long long>(peak_kib));
#endif
}

TEST(Proxy, IdleKeepAliveConnectionsAreClosed) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(one_cluster_config(up.address(), "", "", "limits: {idle_timeout: 200ms}\n"), 1);
  raw_connection c(proxy.port);
  c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  // The response, then nothing: the proxy closes the idle connection (read_all returns at its FIN).
  std::string got = c.read_all();
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
  EXPECT_EQ(got.find("HTTP/1.1", 10), std::string::npos) << got;
}

TEST(Proxy, SlowHeaderIsClosed) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(one_cluster_config(up.address(), "", "", "limits: {header_timeout: 200ms}\n"), 1);
  raw_connection c(proxy.port);
  c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");  // and never the end of the head
  std::string got = c.read_all();                   // returns when the proxy closes the connection
  EXPECT_EQ(got, "");                               // closed without a reply, as nginx does
  EXPECT_EQ(up.stats().at("requests").as_int64(), 0);
  EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 200);  // and everyone else is served
}

// Without --workers: one worker per CPU the process may run on (here pinned
// to one with taskset: the first this test may use), not one per core of the machine.
TEST(Proxy, WithoutWorkersItRunsOnePerCpuItMayUse) {
  auto a = start_demo("a");
  auto b = start_demo("b");
  const std::string path = make_temp_dir() + "/vane.yaml";
  write_file(path, with_test_defaults(split_config(a, b)));
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ASSERT_EQ(::sched_getaffinity(0, sizeof allowed, &allowed), 0);
  int first = 0;
  while (!CPU_ISSET(first, &allowed)) ++first;
  child_process p("/usr/bin/taskset", {"-c", std::to_string(first), proxy_binary(), "--config", path});
  auto line = p.wait_for(" listening on ");
  ASSERT_TRUE(line) << p.output();
  EXPECT_NE(line->find("(1 workers)"), std::string::npos) << *line;
  EXPECT_EQ(fetch(port_of_line(line->substr(0, line->find(" ("))), "GET", "/").status, 200);
}

TEST(Proxy, StopsCleanlyOnSigterm) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(one_cluster_config(up.address()), 2);
  ASSERT_EQ(fetch(proxy.port, "GET", "/").status, 200);
  proxy.process->signal(SIGTERM);
  EXPECT_EQ(proxy.process->wait_exit(), 0);
}
