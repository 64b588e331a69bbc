// The HTTP server every vane API shares (common/http_server.*), in process,
// on 127.0.0.1 with ports the OS chooses.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <stdexcept>
#include <thread>

#include "common/http_server.hpp"
#include "common/listen.hpp"
#include "tests/support/http_client.hpp"

using namespace vane;
using namespace vane::test;
namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;

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
  out.body = json::serialize(json::object{
      {"method", r.method}, {"target", r.target}, {"authorization", r.authorization}, {"body", r.body}});
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

