// TLS through the real binary, with certificates made at test time:
// termination (curl --cacert and our own client), SNI selection, rotation in
// place and by the Kubernetes `..data` symlink swap (new connections get the
// new serial, open ones are still served), a bad new pair refused, bad input
// on a TLS port, and upstream TLS (verification, wrong CA, wrong name, mTLS
// accepted and refused, pooled connections reused).
#include "tests/support/tls.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/json/serialize.hpp>
#include <filesystem>
#include <thread>

#include "tests/support/fixtures.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/prometheus.hpp"
#include "tests/support/recording_upstream.hpp"

using namespace vane::test;

namespace {

double metric(const proxy_instance& p, const std::string& name, const std::map<std::string, std::string>& labels = {}) {
  return metric_sum(parse_metrics(fetch(p.admin_port, "GET", "/metrics").body), name, labels);
}

std::string tls_listener_config(const std::string& tls_block, const std::string& upstream) {
  return R"(
listeners:
  - name: https
    address: 127.0.0.1:0
    tls: )" +
         tls_block + R"(
    routes:
      - name: app
        split: [{cluster: app, weight: 1}]
clusters:
  - {name: app, endpoints: [)" +
         upstream + "]}\n";
}

std::string version_of(const http_response& r) {
  auto at = r.body.find("\"version\":\"");
  if (at == std::string::npos) return {};
  at += 11;
  return r.body.substr(at, r.body.find('"', at) - at);
}

}  // namespace

TEST(Tls, TerminatesForCurlWithModernDefaults) {
  test_pki pki;
  auto cert = pki.issue("server", {"localhost"});
  auto app = start_demo("v1");
  auto proxy = start_proxy(tls_listener_config(
      "{certificate: " + cert.certificate + ", private_key: " + cert.private_key + "}", app.address()));
  std::string url = "https://localhost:" + std::to_string(proxy.port) + "/hello";
  auto [code, out] = run("/usr/bin/curl", {"-sS", "--cacert", pki.ca_certificate(), "-v", url});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("\"version\":\"v1\""), std::string::npos) << out;
  EXPECT_NE(out.find("ALPN: server accepted h2"), std::string::npos) << out;  // curl offers h2 first
  auto [code1, out1] = run("/usr/bin/curl", {"-sS", "--http1.1", "--cacert", pki.ca_certificate(), "-v", url});
  EXPECT_EQ(code1, 0) << out1;
  EXPECT_NE(out1.find("ALPN: server accepted http/1.1"), std::string::npos) << out1;
  EXPECT_NE(out1.find("\"version\":\"v1\""), std::string::npos) << out1;
  EXPECT_NE(out.find("TLSv1.3"), std::string::npos) << out;
  // TLS 1.2 still works; 1.1 and below are refused.
  auto [code12, out12] = run("/usr/bin/curl", {"-sS", "--cacert", pki.ca_certificate(), "--tls-max", "1.2", "-v", url});
  EXPECT_EQ(code12, 0) << out12;
  EXPECT_NE(out12.find("TLSv1.2"), std::string::npos) << out12;
  auto [code11, out11] = run("/usr/bin/openssl", {"s_client", "-connect", "127.0.0.1:" + std::to_string(proxy.port),
                                                  "-tls1_1", "-CAfile", pki.ca_certificate()});
  EXPECT_NE(code11, 0) << out11;

  // Keep-alive over TLS: several requests on one connection.
  tls_client c(proxy.port, "localhost", pki.ca_certificate());
  EXPECT_EQ(c.alpn(), "http/1.1");
  for (int i = 0; i < 5; ++i) {
    auto r = c.get("/n");
    ASSERT_EQ(r.status, 200) << i;
    EXPECT_EQ(version_of(r), "v1");
  }
  // Session resumption: a second connection resumes the first one's session (a TLS 1.3 ticket).
  tls_client again(proxy.port, "localhost", pki.ca_certificate(), c);
  EXPECT_FALSE(c.session_reused());
  EXPECT_TRUE(again.session_reused());
  EXPECT_EQ(again.get("/resumed").status, 200);
  EXPECT_EQ(app.stats().at("requests").as_int64(), 8 + (code12 == 0 ? 1 : 0));
}

TEST(Tls, SniPicksTheCertificateAndUnknownNamesGetTheDefault) {
  test_pki pki;
  auto fallback = pki.issue("default", {"default.test"});
  auto a = pki.issue("a", {"a.example.test"});
  auto wild = pki.issue("wild", {"*.apps.test"});
  auto app = start_demo("v1");
  auto proxy = start_proxy(tls_listener_config(R"({certificates: [
        {certificate: )" + fallback.certificate +
                                                   ", private_key: " + fallback.private_key + R"(},
        {certificate: )" + a.certificate + ", private_key: " +
                                                   a.private_key + R"(, server_names: [a.example.test]},
        {certificate: )" + wild.certificate + ", private_key: " +
                                                   wild.private_key + R"(, server_names: ["*.apps.test"]}]})",
                                               app.address()));
  struct expectation {
    std::string sni, serial;
  };
  for (const auto& [sni, serial] : std::vector<expectation>{{"a.example.test", a.serial},
                                                            {"A.Example.Test", a.serial},
                                                            {"shop.apps.test", wild.serial},
                                                            {"apps.test", fallback.serial},
                                                            {"x.shop.apps.test", fallback.serial},
                                                            {"other.test", fallback.serial},
                                                            {"", fallback.serial}}) {
    tls_client c(proxy.port, sni, pki.ca_certificate());
    EXPECT_EQ(c.peer_serial(), serial) << "SNI '" << sni << "'";
    EXPECT_EQ(c.get("/").status, 200) << "SNI '" << sni << "'";
  }
}

TEST(Tls, RotatedFilesAreServedToNewConnectionsWhileOpenOnesStay) {
  test_pki pki;
  auto first = pki.issue("first", {"localhost"});
  auto second = pki.issue("second", {"localhost"});
  auto third = pki.issue("third", {"localhost"});
  auto mismatched = pki.issue("mismatched", {"localhost"});
  // A mounted Secret: tls.crt -> ..data/tls.crt, ..data -> a timestamped directory.
  namespace fs = std::filesystem;
  std::string secret = pki.dir() + "/secret";
  fs::create_directories(secret + "/ts1");
  fs::copy_file(first.certificate, secret + "/ts1/tls.crt");
  fs::copy_file(first.private_key, secret + "/ts1/tls.key");
  fs::create_directory_symlink("ts1", secret + "/..data");
  fs::create_symlink("..data/tls.crt", secret + "/tls.crt");
  fs::create_symlink("..data/tls.key", secret + "/tls.key");

  auto app = start_demo("v1");
  auto proxy = start_proxy(
      tls_listener_config("{certificate: " + secret + "/tls.crt, private_key: " + secret + "/tls.key}", app.address()));
  tls_client old_connection(proxy.port, "localhost", pki.ca_certificate());
  ASSERT_EQ(old_connection.peer_serial(), first.serial);
  ASSERT_EQ(old_connection.get("/").status, 200);

  // The swap as the kubelet does it: a new directory, then ..data renamed over.
  fs::create_directories(secret + "/ts2");
  fs::copy_file(second.certificate, secret + "/ts2/tls.crt");
  fs::copy_file(second.private_key, secret + "/ts2/tls.key");
  fs::create_directory_symlink("ts2", secret + "/..data_tmp");
  fs::rename(secret + "/..data_tmp", secret + "/..data");
  EXPECT_TRUE(eventually(
      [&] { return tls_client(proxy.port, "localhost", pki.ca_certificate()).peer_serial() == second.serial; }));
  EXPECT_EQ(old_connection.get("/after-rotation").status, 200);
  EXPECT_EQ(old_connection.peer_serial(), first.serial);
  EXPECT_GE(metric(proxy, "vane_tls_certificate_reloads_total", {{"result", "ok"}}), 1);

  // A certificate whose key does not match: refused, logged, the loaded pair stays.
  fs::create_directories(secret + "/ts3");
  fs::copy_file(mismatched.certificate, secret + "/ts3/tls.crt");
  fs::copy_file(third.private_key, secret + "/ts3/tls.key");
  fs::create_directory_symlink("ts3", secret + "/..data_tmp");
  fs::rename(secret + "/..data_tmp", secret + "/..data");
  ASSERT_TRUE(proxy.process->wait_for("certificate files are refused"));
  EXPECT_NE(proxy.process->output().find("does not match"), std::string::npos) << proxy.process->output();
  EXPECT_EQ(metric(proxy, "vane_tls_certificate_reloads_total", {{"result", "error"}}), 1);
  tls_client after_refusal(proxy.port, "localhost", pki.ca_certificate());
  EXPECT_EQ(after_refusal.peer_serial(), second.serial);
  EXPECT_EQ(after_refusal.get("/").status, 200);

  // Fixed in place (files rewritten, no symlink swap): taken.
  fs::copy_file(third.certificate, secret + "/ts3/tls.crt", fs::copy_options::overwrite_existing);
  EXPECT_TRUE(eventually(
      [&] { return tls_client(proxy.port, "localhost", pki.ca_certificate()).peer_serial() == third.serial; }));
  EXPECT_EQ(old_connection.get("/still").status, 200);
}

TEST(Tls, BadInputClosesOnlyThatConnectionAndIsCounted) {
  test_pki pki;
  auto cert = pki.issue("server", {"localhost"});
  auto app = start_demo("v1");
  auto proxy = start_proxy(tls_listener_config(
      "{certificate: " + cert.certificate + ", private_key: " + cert.private_key + ", handshake_timeout: 1s}",
      app.address()));
  tls_client good(proxy.port, "localhost", pki.ca_certificate());
  ASSERT_EQ(good.get("/").status, 200);
  {
    raw_connection plain(proxy.port);  // plain HTTP on the TLS port
    plain.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string back = plain.read_all();
    EXPECT_EQ(back.find("HTTP/1.1 200"), std::string::npos) << back;
  }
  {
    raw_connection garbage(proxy.port);
    garbage.send(std::string("\x16\x03\x01\x00\x05garbage-garbage-garbage", 28));
    garbage.read_all();
  }
  {
    raw_connection silent(proxy.port);  // never sends a ClientHello: closed after handshake_timeout
    EXPECT_EQ(silent.read_all(), "");
  }
  EXPECT_TRUE(eventually([&] {
    return metric(proxy, "vane_downstream_tls_handshake_errors_total", {{"listener", "https"}}) == 3;
  }));
  // The established client was not disturbed, and nothing reached the upstream but its requests.
  EXPECT_EQ(good.get("/again").status, 200);
  EXPECT_EQ(app.stats().at("requests").as_int64(), 2);
}

TEST(Tls, ValidateRefusesUnusableCertificatesWithThePlace) {
  test_pki pki;
  auto a = pki.issue("a", {"localhost"});
  auto b = pki.issue("b", {"localhost"});
  std::string dir = make_temp_dir();
  std::string config = dir + "/vane.yaml";
  // Relative paths are read from the config's directory.
  std::filesystem::copy_file(a.certificate, dir + "/tls.crt");
  std::filesystem::copy_file(b.private_key, dir + "/tls.key");
  write_file(config, tls_listener_config("{certificate: tls.crt, private_key: tls.key}", "127.0.0.1:9"));
  auto [code, out] = run(proxy_binary(), {"--validate", "--config", config});
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find(config + ":5:10: listener.tls: private_key " + dir + "/tls.key does not match certificate"),
            std::string::npos)
      << out;
  std::filesystem::copy_file(a.private_key, dir + "/tls.key", std::filesystem::copy_options::overwrite_existing);
  auto [ok_code, ok_out] = run(proxy_binary(), {"--validate", "--config", config});
  EXPECT_EQ(ok_code, 0) << ok_out;
  write_file(config, tls_listener_config("{certificate: missing.crt, private_key: tls.key}", "127.0.0.1:9"));
  auto [missing_code, missing_out] = run(proxy_binary(), {"--validate", "--config", config});
  EXPECT_NE(missing_code, 0);
  EXPECT_NE(missing_out.find("listener.tls: certificate " + dir + "/missing.crt"), std::string::npos) << missing_out;
}

// Upstream TLS: a front vane-proxy (plain listener) whose cluster speaks TLS
// to a back vane-proxy terminating TLS (and asking for client certificates)
// in front of the demo app.
class UpstreamTls : public ::testing::Test {
 protected:
  void SetUp() override {
    server = pki.issue("backend", {"backend.internal"});
    client = pki.issue("client", {"front.internal"});
    stranger = other.issue("stranger", {"front.internal"});
    app = start_demo("v1");
    back = start_proxy(
        tls_listener_config("{certificate: " + server.certificate + ", private_key: " + server.private_key +
                                ", client_ca: " + pki.ca_certificate() + ", require_client_certificate: true}",
                            app.address()));
  }
  proxy_instance front(const std::string& cluster_tls) {
    return start_proxy(R"(
listeners:
  - name: http
    address: 127.0.0.1:0
    routes:
      - name: app
        split: [{cluster: backend, weight: 1}]
clusters:
  - name: backend
    endpoints: [127.0.0.1:)" +
                       std::to_string(back.port) + R"(]
    tls: )" + cluster_tls +
                       "\n");
  }
  test_pki pki;
  test_pki other{"another CA"};
  issued_cert server, client, stranger;
  demo_instance app;
  proxy_instance back;
};

TEST_F(UpstreamTls, VerifiedMutualTlsWithPooledConnections) {
  auto f = front("{sni: backend.internal, ca: " + pki.ca_certificate() + ", certificate: " + client.certificate +
                 ", private_key: " + client.private_key + "}");
  http_client c(f.port);
  for (int i = 0; i < 20; ++i) {
    auto r = c.get("/through");
    ASSERT_EQ(r.status, 200) << i << " " << r.body;
    EXPECT_EQ(version_of(r), "v1");
  }
  // One encrypted upstream connection carried all twenty.
  auto clusters = fetch_json(f.admin_port, "/clusters");
  std::int64_t created = -1;
  for (const auto& cl : clusters.at("clusters").as_array())
    if (cl.at("name").as_string() == "backend") created = cl.at("pool").at("created").as_int64();
  EXPECT_EQ(created, 1) << boost::json::serialize(clusters);
  EXPECT_EQ(metric(back, "vane_downstream_tls_handshake_errors_total"), 0);
  EXPECT_EQ(app.stats().at("requests").as_int64(), 20);
}

TEST_F(UpstreamTls, WrongCaWrongNameOrNoClientCertificateIs502) {
  struct failing {
    const char* why;
    std::string tls;
  };
  const std::string cert = ", certificate: " + client.certificate + ", private_key: " + client.private_key;
  for (const auto& [why, tls] : std::vector<failing>{
           {"a CA that did not sign the server's certificate",
            "{sni: backend.internal, ca: " + other.ca_certificate() + cert + "}"},
           {"a name the certificate does not carry", "{sni: wrong.internal, ca: " + pki.ca_certificate() + cert + "}"},
           {"no client certificate", "{sni: backend.internal, ca: " + pki.ca_certificate() + "}"},
           {"a client certificate from another CA", "{sni: backend.internal, ca: " + pki.ca_certificate() +
                                                        ", certificate: " + stranger.certificate +
                                                        ", private_key: " + stranger.private_key + "}"}}) {
    auto f = front(tls);
    auto r = fetch(f.port, "GET", "/");
    EXPECT_EQ(r.status, 502) << why << ": " << r.body;
  }
  EXPECT_EQ(app.stats().at("requests").as_int64(), 0);
  // Without a name, the endpoint's IP is verified (the certificate carries 127.0.0.1).
  auto by_ip = front("{ca: " + pki.ca_certificate() + cert + "}");
  EXPECT_EQ(fetch(by_ip.port, "GET", "/").status, 200);
}

TEST(Examples, TlsYamlTerminatesInFrontOfTheSplit) {
  test_pki pki;
  pki.issue("tls", {"localhost"});  // tls.crt and tls.key, where the example expects them
  auto primary = start_demo("primary");
  auto canary = start_demo("canary");
  std::string text = read_text_file(source_dir() + "/configs/tls.yaml");
  text = replace_all(text, "127.0.0.1:8443", "127.0.0.1:0");
  text = replace_all(text, "127.0.0.1:9898", primary.address());
  text = replace_all(text, "127.0.0.1:9899", canary.address());
  std::string config = pki.dir() + "/vane.yaml";
  write_file(config, with_test_defaults(text));
  auto proxy = start_proxy_file(config);
  tls_client c(proxy.port, "localhost", pki.ca_certificate());
  int on_canary = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = c.get("/");
    ASSERT_EQ(r.status, 200);
    on_canary += version_of(r) == "canary";
  }
  EXPECT_EQ(on_canary, 2);  // 90/10, smooth weighted round robin: exact over 20
  auto headers = c.get("/headers");
  EXPECT_NE(headers.body.find("\"x-forwarded-proto\":\"https\""), std::string::npos) << headers.body;
}

namespace {

// A TLS upstream that answers every request with the same bytes: here a
// response followed by a second, unasked-for one, sent in one TLS record.
class tls_scripted_upstream {
 public:
  tls_scripted_upstream(const issued_cert& cert, std::string response) : response_(std::move(response)) {
    ctx_.use_certificate_chain_file(cert.certificate);
    ctx_.use_private_key_file(cert.private_key, boost::asio::ssl::context::pem);
    acceptor_.open(boost::asio::ip::tcp::v4());
    acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    thread_ = std::thread([this] { run(); });
  }
  ~tls_scripted_upstream() {
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    boost::system::error_code ec;
    acceptor_.close(ec);
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_.load(); }

 private:
  void run() {
    serve_each_connection(acceptor_, connections_, [this](boost::asio::ip::tcp::socket s) {
      timeval tv{30, 0};
      setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      boost::asio::ssl::stream<boost::asio::ip::tcp::socket&> tls(s, ctx_);
      boost::system::error_code ec;
      tls.handshake(boost::asio::ssl::stream_base::server, ec);
      std::string in;
      char buf[4096];
      while (!ec) {
        if (auto end = in.find("\r\n\r\n"); end != std::string::npos) {
          in.erase(0, end + 4);
          boost::asio::write(tls, boost::asio::buffer(response_), ec);
          continue;
        }
        std::size_t n = tls.read_some(boost::asio::buffer(buf), ec);
        in.append(buf, n);
      }
    });
  }
  std::string response_;
  boost::asio::io_context ioc_;
  boost::asio::ssl::context ctx_{boost::asio::ssl::context::tls_server};
  boost::asio::ip::tcp::acceptor acceptor_{ioc_};
  std::thread thread_;
  std::atomic<int> connections_{0};
};

}  // namespace

// Over TLS the stray bytes may end up in the proxy's read buffer or still
// inside OpenSSL's (where a peek at the socket cannot see them); both are checked at release.
TEST(UpstreamTlsStrict, StrayBytesAfterAResponseAreNeverTakenAsTheNextOne) {
  test_pki pki;
  auto cert = pki.issue("upstream", {"upstream.internal"});
  tls_scripted_upstream up(cert,
                           "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                           "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged");
  auto proxy = start_proxy(R"(
listeners:
  - name: http
    address: 127.0.0.1:0
    routes:
      - name: r
        split: [{cluster: c, weight: 1}]
clusters:
  - name: c
    endpoints: [127.0.0.1:)" +
                           std::to_string(up.port()) + R"(]
    tls: {sni: upstream.internal, ca: )" +
                           pki.ca_certificate() + "}\n");
  http_client c(proxy.port);
  for (int i = 1; i <= 3; ++i) {
    auto r = c.get("/");
    EXPECT_EQ(r.status, 200) << i;
    EXPECT_EQ(r.body, "ok") << i;
  }
  EXPECT_EQ(up.connections(), 3) << "a connection with unread bytes was reused";
}
