// HTTP/2 downstream through the real binary: h2c with prior knowledge on a
// plain listener (detected by the preface), h2 by ALPN on a TLS one, with
// real clients (curl, h2load); the same routing, bodies and metrics as
// HTTP/1.1.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <csignal>
#include <filesystem>

#include "tests/support/fixtures.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"
#include "tests/support/recording_upstream.hpp"
#include "tests/support/tls.hpp"

using namespace vane::test;
namespace json = boost::json;

namespace {

const char* curl = "/usr/bin/curl";
const char* h2load = "/usr/bin/h2load";

std::string url(const proxy_instance& p, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(p.port) + path;
}

}  // namespace

TEST(Http2, PriorKnowledgeRequestsAreRoutedSplitAndCounted) {
  auto p = start_demo("p");
  auto c = start_demo("c");
  auto proxy = start_proxy(half_split_config(p.address(), c.address(), R"(        rules:
          - match: [{headers: {x-canary: {exact: "1"}}}]
            cluster: app-canary
)"),
                           1);
  // One connection, four streams (nghttp; curl 7.88 cannot reuse an h2c connection, curl/curl#10634):
  // the split alternates.
  auto [code, out] = run("/usr/bin/nghttp", {url(proxy, "/a"), url(proxy, "/b"), url(proxy, "/c"), url(proxy, "/d")});
  ASSERT_EQ(code, 0) << out;
  auto [vcode, verbose] = run(curl, {"-sS", "--http2-prior-knowledge", "-v", url(proxy, "/v")});
  ASSERT_EQ(vcode, 0) << verbose;
  EXPECT_NE(verbose.find("< HTTP/2 200"), std::string::npos) << verbose;
  std::size_t on_p = 0, on_c = 0;
  for (std::size_t at = 0; (at = out.find("\"version\":\"", at)) != std::string::npos; ++at)
    (out.compare(at + 11, 1, "p") == 0 ? on_p : on_c) += 1;
  EXPECT_EQ(on_p, 2u) << out;
  EXPECT_EQ(on_c, 2u) << out;
  // An A/B rule on a header, as on HTTP/1.1.
  for (int i = 0; i < 3; ++i) {
    auto [rc, r] = run(curl, {"-sS", "--http2-prior-knowledge", "-H", "x-canary: 1", url(proxy, "/r")});
    EXPECT_NE(r.find("\"version\":\"c\""), std::string::npos) << r;
  }
  // Counted with the status the client got.
  EXPECT_EQ(metric(proxy, R"(vane_requests_total{route="app",cluster="app-primary",code="200"})", 3), 3);
  EXPECT_EQ(metric(proxy, R"(vane_requests_total{route="app",cluster="app-canary",code="200"})", 5), 5);
  EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 200);  // HTTP/1.1 on the same listener
}

// A local reply (here the route's fault) is an HTTP/2 response with its status and body.
// A browser sends its cookies over HTTP/2 as separate fields (RFC 9113 §8.2.3); an HTTP/1.1
// upstream gets them joined into one, and the request line as the client sent it. Long ones:
// the join outgrows the stream's store (a request line read from the store it left was garbage).
TEST(Http2, CookieFieldsAreJoinedForAnHttp1Upstream) {
  recording_upstream up("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  auto proxy = start_proxy(one_route_config(up.address()), 1);
  const std::string a(500, 'a'), b(500, 'b'), c(500, 'c');
  auto [code, out] = run("/usr/bin/nghttp", {"-H", "cookie: a=" + a, "-H", "x-between: 1", "-H", "cookie: b=" + b, "-H",
                                             "cookie: c=" + c, url(proxy, "/some/path?q=1")});
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(out, "ok");
  ASSERT_EQ(up.count(), 1u);
  const std::string seen = up.requests()[0];
  EXPECT_EQ(seen.rfind("GET /some/path?q=1 HTTP/1.1\r\n", 0), 0u) << seen.substr(0, 200);
  const std::string joined = "a=" + a + "; b=" + b + "; c=" + c;
  std::size_t fields = 0;
  for (std::size_t at = 0; (at = seen.find("\r\ncookie: ", at)) != std::string::npos; ++at) ++fields;
  EXPECT_EQ(fields, 1u) << seen;
  EXPECT_NE(seen.find("\r\ncookie: " + joined + "\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("\r\nx-between: 1\r\n"), std::string::npos) << seen;
}

TEST(Http2, LocalRepliesAreResponsesOnTheStream) {
  auto p = start_demo("p");
  auto proxy = start_proxy(
      half_split_config(p.address(), p.address(), "        fault: {abort: {status: 503, percent: 100}}\n"), 1);
  for (int i = 0; i < 2; ++i) {
    auto [code, out] =
        run(curl, {"-sS", "--http2-prior-knowledge", "-w", " %{http_code} %{http_version}", url(proxy, "/")});
    ASSERT_EQ(code, 0) << out;
    EXPECT_EQ(out, "fault filter abort\n 503 2");
  }
  EXPECT_EQ(metric(proxy, R"(vane_requests_total{route="app",cluster="app-primary",code="503"})", 1) +
                metric(proxy, R"(vane_requests_total{route="app",cluster="app-canary",code="503"})", 1),
            2);
}

TEST(Http2, BodiesGoBothWaysWholeUnderFlowControl) {
  auto p = start_demo("p");
  auto proxy = start_proxy(half_split_config(p.address(), p.address(), ""), 1);
  const std::string dir = make_temp_dir();
  const std::string body_file = dir + "/body.bin";
  std::string body(300 * 1024, '\0');  // several windows of 64 KiB
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  write_file(body_file, body);
  // What HTTP/1.1 says of the body, the reference.
  auto h1 = fetch(proxy.port, "PUT", "/up", {}, body);
  ASSERT_EQ(h1.status, 200);
  const auto expected = json::parse(h1.body).at("checksum");
  auto [code, out] =
      run(curl, {"-sS", "--http2-prior-knowledge", "-X", "PUT", "--data-binary", "@" + body_file, url(proxy, "/up")});
  ASSERT_EQ(code, 0) << out;
  auto answer = json::parse(out);
  EXPECT_EQ(answer.at("received").as_int64(), static_cast<std::int64_t>(body.size()));
  EXPECT_EQ(answer.at("checksum"), expected);
  // A big response body (the demo's /bytes/N), chunked upstream, whole downstream.
  auto [code2, out2] = run(curl, {"-sS", "--http2-prior-knowledge", "-o", dir + "/got", "-w", "%{size_download}",
                                  url(proxy, "/bytes/1000000?chunked=1")});
  ASSERT_EQ(code2, 0) << out2;
  EXPECT_EQ(out2, "1000000");
}

TEST(Http2, ManyConcurrentStreamsOnFewConnections) {
  auto p = start_demo("p");
  auto c = start_demo("c");
  auto proxy = start_proxy(half_split_config(p.address(), c.address(), ""), 2);
  auto [code, out] = run(h2load, {"-n", "1000", "-c", "4", "-m", "16", url(proxy, "/")});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("1000 succeeded, 0 failed, 0 errored"), std::string::npos) << out;
  EXPECT_NE(out.find("status codes: 1000 2xx"), std::string::npos) << out;
  const double p200 = metric(proxy, R"(vane_requests_total{route="app",cluster="app-primary",code="200"})", 400);
  const double c200 = metric(proxy, R"(vane_requests_total{route="app",cluster="app-canary",code="200"})", 400);
  EXPECT_EQ(p200 + c200, 1000);
}

TEST(Http2, TlsListenersOfferH2ByAlpn) {
  test_pki pki;
  auto cert = pki.issue("server", {"localhost"});
  auto app = start_demo("v1");
  auto proxy = start_proxy(R"(
listeners:
  - name: https
    address: 127.0.0.1:0
    tls: {certificate: )" + cert.certificate +
                           ", private_key: " + cert.private_key + R"(}
    routes:
      - name: app
        split: [{cluster: app, weight: 1}]
clusters:
  - {name: app, endpoints: [)" +
                           app.address() + "]}\n");
  const std::string https = "https://localhost:" + std::to_string(proxy.port) + "/h";
  auto [code, out] = run(curl, {"-sS", "--http2", "--cacert", pki.ca_certificate(), "-v", https, https});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("ALPN: server accepted h2"), std::string::npos) << out;
  EXPECT_NE(out.find("< HTTP/2 200"), std::string::npos) << out;
  EXPECT_NE(out.find("\"version\":\"v1\""), std::string::npos) << out;
}

TEST(Http2, ABadPrefaceOrFrameClosesThatConnectionOnly) {
  auto p = start_demo("p");
  auto proxy = start_proxy(half_split_config(p.address(), p.address(), ""), 1);
  {
    raw_connection raw(proxy.port);
    raw.send(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string(9, '\xff') + "garbage");
    raw.read_all();  // a GOAWAY maybe, then the close
  }
  {
    raw_connection raw(proxy.port);
    raw.send("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");  // not the preface
    raw.read_all();
  }
  EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 200);
  auto [code, out] = run(curl, {"-sS", "--http2-prior-knowledge", url(proxy, "/")});
  EXPECT_EQ(code, 0) << out;
}

// A drain says GOAWAY to an HTTP/2 client (NO_ERROR), then closes its connection; the proxy exits.
TEST(Http2, ADrainSaysGoawayThenCloses) {
  auto p = start_demo("p");
  auto proxy = start_proxy(half_split_config(p.address(), p.address(), ""), 1);
  raw_connection raw(proxy.port);
  raw.send(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string("\0\0\0\4\0\0\0\0\0", 9));
  raw.read_until(std::string("\0\0\0\4\1\0\0\0\0", 9));  // the ACK of our SETTINGS: the connection is up
  proxy.process->signal(SIGTERM);
  const std::string rest = raw.read_all();
  // A GOAWAY frame: length 8, type 7, stream 0; last stream 0, NO_ERROR.
  const std::string goaway = std::string("\0\0\x08\x07\0\0\0\0\0", 9) + std::string(8, '\0');
  EXPECT_NE(rest.find(goaway), std::string::npos);
  EXPECT_EQ(proxy.process->wait_exit(), std::optional<int>(0));
}

// The access log says which protocol the client spoke.
TEST(Http2, TheAccessLogSaysHttp2) {
  auto p = start_demo("p");
  const std::string log = make_temp_dir() + "/access.log";
  auto proxy = start_proxy(half_split_config(p.address(), p.address(), ""), 1, {"--access-log", log});
  auto [code, out] = run(curl, {"-sS", "--http2-prior-knowledge", "-H", "x-request-id: h2-1", url(proxy, "/logged")});
  ASSERT_EQ(code, 0) << out;
  std::string line;
  ASSERT_TRUE(eventually([&] {
    const std::string text = read_text_file(log);
    const auto at = text.find("h2-1");
    if (at == std::string::npos) return false;
    const auto begin = text.rfind('\n', at);
    line = text.substr(begin == std::string::npos ? 0 : begin + 1,
                       text.find('\n', at) - (begin == std::string::npos ? 0 : begin + 1));
    return true;
  }));
  auto v = json::parse(line).as_object();
  EXPECT_EQ(v.at("protocol").as_string(), "HTTP/2");
  EXPECT_EQ(v.at("method").as_string(), "GET");
  EXPECT_EQ(v.at("path").as_string(), "/logged");
  EXPECT_EQ(v.at("status").as_int64(), 200);
}
