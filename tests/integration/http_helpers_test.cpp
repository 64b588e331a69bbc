// The HTTP server and client every vane part shares (common/http_server.*,
// common/http_client.*, common/https_client.*), in process, on 127.0.0.1 with
// ports the OS chooses.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <stdexcept>
#include <thread>

#include "common/http_client.hpp"
#include "common/http_server.hpp"
#include "common/https_client.hpp"
#include "common/listen.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/tls.hpp"

using namespace vane;
using namespace vane::test;
namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

const asio::ip::address loopback = asio::ip::make_address("127.0.0.1");

// Answers with what it was given; /throw throws, /big is 4000 bytes.
asio::awaitable<http_server_reply> echo(http_server_request r) {
  if (r.target == "/throw") throw std::runtime_error("boom");
  http_server_reply out;
  if (r.target == "/big") {
    out.content_type = "text/plain";
    out.body = std::string(4000, 'x');
    co_return out;
  }
  out.headers.emplace_back("X-Seen", "yes");
  out.body = json::serialize(
      json::object{{"method", r.method}, {"target", r.target}, {"authorization", r.authorization}, {"body", r.body}});
  co_return out;
}

// serve_http on its own thread until destroyed.
class served {
 public:
  explicit served(http_server_options options) {
    boost::system::error_code ec;
    acceptor_ = listen_on(ioc_.get_executor(), tcp::endpoint(loopback, 0), false, ec);
    if (ec) throw std::runtime_error("listen: " + ec.message());
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(ioc_, serve_http(acceptor_, std::move(options), echo), asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~served() {
    asio::post(ioc_, [this] {
      acceptor_.close();  // serve_http ends (operation_aborted)
      ioc_.stop();        // and the connections still open with it
    });
    thread_.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  asio::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  std::uint16_t port_ = 0;
  std::thread thread_;
};

http_server_options small_options() {
  http_server_options o;
  o.server = "vane-test";
  o.log_name = "test";
  o.body_limit = 1024;
  o.header_limit = 2048;
  return o;
}

// Runs one call (made by `call` from an executor) on an io_context of its own.
template <class Call>
http_result run(Call call) {
  asio::io_context ioc;
  auto f = asio::co_spawn(ioc, call(asio::any_io_executor(ioc.get_executor())), asio::use_future);
  ioc.run();
  return f.get();
}

}  // namespace

TEST(HttpServer, AnswersWhatTheHandlerSaysWithItsFields) {
  served s(small_options());
  auto r = fetch(s.port(), "PUT", "/x?y=1", {{"Authorization", "Bearer t"}}, "{\"a\":1}");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("server"), "vane-test");
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("x-seen"), "yes");
  auto v = json::parse(r.body).as_object();
  EXPECT_EQ(v.at("method").as_string(), "PUT");
  EXPECT_EQ(v.at("target").as_string(), "/x?y=1");
  EXPECT_EQ(v.at("authorization").as_string(), "Bearer t");
  EXPECT_EQ(v.at("body").as_string(), "{\"a\":1}");
}

TEST(HttpServer, KeepsAliveTwoRequestsOnOneConnection) {
  served s(small_options());
  http_client c(s.port());
  auto a = c.get("/one");
  EXPECT_EQ(a.status, 200);
  EXPECT_TRUE(a.keep_alive);
  ASSERT_TRUE(c.connected());
  auto b = c.get("/two");  // on the same connection: the client only connects when it has none
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(json::parse(b.body).at("target").as_string(), "/two");
  auto last = c.request("GET", "/three", {{"Connection", "close"}});
  EXPECT_EQ(last.status, 200);
  EXPECT_FALSE(last.keep_alive);
  EXPECT_EQ(last.header("connection"), "close");
}

TEST(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  served s(small_options());
  raw_connection c(s.port());
  c.send(
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string got = c.read_all();
  auto a = got.find("\"target\":\"/a\"");
  auto b = got.find("\"target\":\"/b\"");
  ASSERT_NE(a, std::string::npos) << got;
  ASSERT_NE(b, std::string::npos) << got;
  EXPECT_LT(a, b);
}

TEST(HttpServer, ClosesWhenKeepAliveIsOff) {
  auto o = small_options();
  o.keep_alive = false;
  served s(o);
  http_client c(s.port());
  auto r = c.get("/");
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.keep_alive);
  EXPECT_FALSE(c.connected());
}

TEST(HttpServer, BadRequestIs400JsonAndClosed) {
  served s(small_options());
  raw_connection c(s.port());
  c.send("GET / HTTP/1.1\r\nHost x\r\n\r\n");
  std::string got = c.read_all();  // returns: the server closed
  EXPECT_EQ(got.rfind("HTTP/1.1 400 ", 0), 0u) << got;
  EXPECT_NE(got.find("Server: vane-test\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("Content-Type: application/json\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find(R"({"error":"bad request: )"), std::string::npos) << got;
}

TEST(HttpServer, HeadOverTheLimitIs400) {
  served s(small_options());
  raw_connection c(s.port());
  c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(4096, 'a') + "\r\n\r\n");
  std::string got = c.read_all();
  EXPECT_EQ(got.rfind("HTTP/1.1 400 ", 0), 0u) << got;
  EXPECT_NE(got.find(R"({"error":"bad request: )"), std::string::npos) << got;
}

TEST(HttpServer, BodyOverTheLimitIs413JsonBeforeItIsRead) {
  served s(small_options());
  raw_connection c(s.port());
  c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
  std::string got = c.read_all();
  EXPECT_EQ(got.rfind("HTTP/1.1 413 ", 0), 0u) << got;
  EXPECT_NE(got.find(R"({"error":"request body over 1KiB"})"), std::string::npos) << got;
  // A chunked body over the limit too.
  raw_connection d(s.port());
  d.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + std::string(2048, 'b') +
         "\r\n0\r\n\r\n");
  got = d.read_all();
  EXPECT_EQ(got.rfind("HTTP/1.1 413 ", 0), 0u) << got;
}

TEST(HttpServer, AHandlersExceptionIsA500AndTheServerGoesOn) {
  served s(small_options());
  auto r = fetch(s.port(), "GET", "/throw");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "{\"error\":\"internal error\"}\n");
  EXPECT_FALSE(r.keep_alive);
  EXPECT_EQ(fetch(s.port(), "GET", "/after").status, 200);
}

TEST(HttpServer, ErrorReplyIsJson) {
  auto r = http_error_reply(409, "say \"why\"");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, "{\"error\":\"say \\\"why\\\"\"}\n");
}

TEST(HttpClient, CallsAndReadsTheAnswer) {
  served s(small_options());
  http_request_spec spec;
  spec.method = "POST";
  spec.target = "/p";
  spec.headers = {{"Authorization", "Bearer k"}};
  spec.body = R"({"x":true})";
  auto r = run([&](asio::any_io_executor ex) { return http_fetch(ex, "127.0.0.1", std::to_string(s.port()), spec); });
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200);
  auto v = json::parse(r.body).as_object();
  EXPECT_EQ(v.at("method").as_string(), "POST");
  EXPECT_EQ(v.at("target").as_string(), "/p");
  EXPECT_EQ(v.at("authorization").as_string(), "Bearer k");
  EXPECT_EQ(v.at("body").as_string(), R"({"x":true})");
  // The same to an address, and the controller's form.
  auto e = run([&](asio::any_io_executor ex) { return http_fetch(ex, tcp::endpoint(loopback, s.port()), spec); });
  EXPECT_EQ(e.status, 200);
  http_url url{"127.0.0.1", std::to_string(s.port()), "/"};
  auto c = run([&](asio::any_io_executor ex) { return http_call(ex, url, "DELETE", "/d", "", 5s, {}); });
  EXPECT_EQ(c.status, 200);
  EXPECT_EQ(json::parse(c.body).at("method").as_string(), "DELETE");
}

TEST(HttpClient, FailuresAreErrorsNotExceptions) {
  served s(small_options());
  http_request_spec spec;
  spec.target = "/big";
  spec.body_limit = 1000;
  auto big = run([&](asio::any_io_executor ex) { return http_fetch(ex, tcp::endpoint(loopback, s.port()), spec); });
  EXPECT_EQ(big.status, 0);
  EXPECT_EQ(big.error.rfind("no answer from 127.0.0.1:" + std::to_string(s.port()) + ": ", 0), 0u) << big.error;

  std::uint16_t closed_port;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(loopback, 0));
    closed_port = a.local_endpoint().port();
  }
  auto refused =
      run([&](asio::any_io_executor ex) { return http_fetch(ex, tcp::endpoint(loopback, closed_port), {}); });
  EXPECT_EQ(refused.status, 0);
  EXPECT_EQ(refused.error.rfind("cannot connect to 127.0.0.1:" + std::to_string(closed_port) + ": ", 0), 0u)
      << refused.error;

  // A peer that takes the connection (the kernel's backlog) and never answers.
  asio::io_context ioc;
  tcp::acceptor silent(ioc, tcp::endpoint(loopback, 0));
  http_request_spec quick;
  quick.timeout = 200ms;
  auto timeout = run([&](asio::any_io_executor ex) { return http_fetch(ex, silent.local_endpoint(), quick); });
  EXPECT_EQ(timeout.status, 0);
  EXPECT_EQ(timeout.error, "timeout from 127.0.0.1:" + std::to_string(silent.local_endpoint().port()));

  // (a service name no /etc/services has: refused without asking any DNS server)
  auto unresolved = run([&](asio::any_io_executor ex) { return http_fetch(ex, "127.0.0.1", "no-such-service", {}); });
  EXPECT_EQ(unresolved.status, 0);
  EXPECT_EQ(unresolved.error.rfind("cannot resolve 127.0.0.1: ", 0), 0u) << unresolved.error;
}

namespace {

// A TLS server answering each connection's first request with 204.
class tls_server {
 public:
  explicit tls_server(const issued_cert& cert) {
    ctx_.use_certificate_chain_file(cert.certificate);
    ctx_.use_private_key_file(cert.private_key, asio::ssl::context::pem);
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(loopback, 0));
    acceptor_.listen();
    thread_ = std::thread([this] { run(); });
  }
  ~tls_server() {
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    boost::system::error_code ec;
    acceptor_.close(ec);
    thread_.join();
  }
  tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }

 private:
  void run() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket s(ioc_);
      acceptor_.accept(s, ec);
      if (ec) break;
      timeval tv{30, 0};
      setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      asio::ssl::stream<tcp::socket&> tls(s, ctx_);
      tls.handshake(asio::ssl::stream_base::server, ec);
      std::string in;
      char buf[4096];
      while (!ec && in.find("\r\n\r\n") == std::string::npos) in.append(buf, tls.read_some(asio::buffer(buf), ec));
      if (!ec) asio::write(tls, asio::buffer(std::string("HTTP/1.1 204 No Content\r\n\r\n")), ec);
    }
  }
  asio::io_context ioc_;
  asio::ssl::context ctx_{asio::ssl::context::tls_server};
  tcp::acceptor acceptor_{ioc_};
  std::thread thread_;
};

}  // namespace

TEST(HttpsClient, VerifiesTheNameItIsGiven) {
  test_pki pki;
  auto cert = pki.issue("server", {"server.internal"});
  tls_server server(cert);
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(pki.ca_certificate());
  ctx.set_verify_mode(asio::ssl::verify_peer);
  auto expecting = [](std::string name) {
    return tls_prepare([name](SSL* ssl) {
      SSL_set_tlsext_host_name(ssl, name.c_str());
      SSL_set1_host(ssl, name.c_str());
    });
  };
  http_request_spec spec;
  spec.target = "/healthz";
  auto ok = run([&](asio::any_io_executor ex) {
    return https_fetch(ex, server.endpoint(), ctx, expecting("server.internal"), spec);
  });
  EXPECT_EQ(ok.error, "");
  EXPECT_EQ(ok.status, 204);
  auto wrong = run([&](asio::any_io_executor ex) {
    return https_fetch(ex, server.endpoint(), ctx, expecting("other.internal"), spec);
  });
  EXPECT_EQ(wrong.status, 0);
  EXPECT_EQ(
      wrong.error.rfind("TLS handshake with 127.0.0.1:" + std::to_string(server.endpoint().port()) + " failed: ", 0),
      0u)
      << wrong.error;
}
