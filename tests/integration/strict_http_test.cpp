// Strict HTTP/1.1 at the trust boundary (RFC 9112/9110), through raw sockets:
// every malformed or ambiguous request gets a 400 (or a closed connection)
// and never reaches the upstream, not even as a second request hidden in the
// first one's body; a malformed response from an upstream becomes a 502 and
// its connection is not reused.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "tests/support/fixtures.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/recording_upstream.hpp"
#include "tests/support/scripted_http.hpp"

using namespace vane::test;

namespace {

// Sends `bytes` on a fresh connection, half-closes, returns all that came back.
std::string send_and_read(std::uint16_t port, const std::string& bytes) {
  raw_connection c(port);
  c.send(bytes);
  c.shutdown_send();
  return c.read_all();
}

// Sends `request` through the proxy, expects a 200, and returns the request
// `up` then received (lowered; empty, with a failure, if none came).
std::string forwarded_as(std::uint16_t port, recording_upstream& up, const std::string& request) {
  const std::size_t before = up.count();
  const std::string got = send_and_read(port, request);
  EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << got;
  if (!eventually([&] { return up.count() == before + 1; })) {
    ADD_FAILURE() << "the upstream got no request";
    return {};
  }
  return lower(up.requests()[before]);
}

// A test upstream on 127.0.0.1 (a port the OS picks): each connection is
// served by `serve` on a thread of its own, until the destructor.
class threaded_upstream {
 public:
  explicit threaded_upstream(std::function<void(boost::asio::ip::tcp::socket&)> serve) : serve_(std::move(serve)) {
    acceptor_.open(boost::asio::ip::tcp::v4());
    acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    thread_ = std::thread([this] {
      serve_each_connection(acceptor_, connections_, [this](boost::asio::ip::tcp::socket s) { serve_(s); });
    });
  }
  ~threaded_upstream() {
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    boost::system::error_code ec;
    acceptor_.close(ec);
    thread_.join();
  }
  threaded_upstream(const threaded_upstream&) = delete;
  threaded_upstream& operator=(const threaded_upstream&) = delete;
  std::string address() const { return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }

 private:
  std::function<void(boost::asio::ip::tcp::socket&)> serve_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_{ioc_};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

struct bad_request {
  const char* why;
  std::string bytes;
};

const std::string H = "Host: x\r\n";

std::vector<bad_request> bad_requests() {
  using namespace std::string_literals;
  return {
      // Framing: request smuggling needs two parties to disagree on where a body ends.
      {"Content-Length and Transfer-Encoding",
       "POST / HTTP/1.1\r\n" + H + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"Transfer-Encoding then Content-Length",
       "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"},
      {"two different Content-Lengths",
       "POST / HTTP/1.1\r\n" + H + "Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"},
      {"a Content-Length list", "POST / HTTP/1.1\r\n" + H + "Content-Length: 4, 5\r\n\r\nabcde"},
      {"Content-Length with a sign", "POST / HTTP/1.1\r\n" + H + "Content-Length: +4\r\n\r\nabcd"},
      {"Content-Length in hex", "POST / HTTP/1.1\r\n" + H + "Content-Length: 0x4\r\n\r\nabcd"},
      {"negative Content-Length", "POST / HTTP/1.1\r\n" + H + "Content-Length: -1\r\n\r\n"},
      {"Content-Length with letters", "POST / HTTP/1.1\r\n" + H + "Content-Length: 4a\r\n\r\nabcd"},
      {"Content-Length overflowing 64 bits",
       "POST / HTTP/1.1\r\n" + H + "Content-Length: 99999999999999999999999\r\n\r\n"},
      {"Transfer-Encoding gzip alone",
       "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: gzip\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"chunked not the final coding", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"},
      {"chunked applied twice",
       "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"an unknown coding", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
      {"Transfer-Encoding on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      // Field syntax.
      {"obs-fold", "GET / HTTP/1.1\r\n" + H + "X-A: a\r\n b\r\n\r\n"},
      {"obs-fold with a tab", "GET / HTTP/1.1\r\n" + H + "X-A: a\r\n\tb\r\n\r\n"},
      {"space before the colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n"},
      {"tab before the colon", "GET / HTTP/1.1\r\n" + H + "X-A\t: b\r\n\r\n"},
      {"space before the colon of Transfer-Encoding",
       "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\nabcd"},
      {"bare LF line endings",
       "GET / HTTP/1.1\n"
       "Host: x\n\n"},
      {"a bare LF ending one field", "GET / HTTP/1.1\r\n" + H + "X-A: a\nX-B: b\r\n\r\n"},
      {"a bare CR in a value", "GET / HTTP/1.1\r\n" + H + "X-A: a\rb\r\n\r\n"},
      {"NUL in a value", "GET / HTTP/1.1\r\n" + H + "X-A: a\0b\r\n\r\n"s},
      {"a control character in a value", "GET / HTTP/1.1\r\n" + H +
                                             "X-A: a\x01"
                                             "b\r\n\r\n"},
      {"DEL in a value", "GET / HTTP/1.1\r\n" + H +
                             "X-A: a\x7f"
                             "b\r\n\r\n"},
      {"NUL in a name", "GET / HTTP/1.1\r\n" + H + "X\0A: b\r\n\r\n"s},
      {"a space in a name", "GET / HTTP/1.1\r\n" + H + "X A: b\r\n\r\n"},
      {"a separator in a name", "GET / HTTP/1.1\r\n" + H + "X(A): b\r\n\r\n"},
      {"an empty name", "GET / HTTP/1.1\r\n" + H + ": b\r\n\r\n"},
      {"a line without a colon", "GET / HTTP/1.1\r\n" + H + "garbage\r\n\r\n"},
      // Chunks.
      {"a chunk size that is not hex",
       "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n"},
      {"a chunk size overflowing 64 bits",
       "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n1FFFFFFFFFFFFFFFF\r\nabcd\r\n0\r\n\r\n"},
      {"a chunk size with a sign",
       "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n-4\r\nabcd\r\n0\r\n\r\n"},
      {"a control character in a chunk extension",
       "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n4;a=\x01\r\nabcd\r\n0\r\n\r\n"},
      {"chunk data longer than its size",
       "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n4\r\nabcdX\r\n0\r\n\r\n"},
      {"a chunk size with a bare LF",
       "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n4\nabcd\r\n0\r\n\r\n"},
      // Request line and Host.
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
      {"no Host on HTTP/1.1", "GET / HTTP/1.1\r\n\r\n"},
      {"an invalid Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
      {"a Host with a path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"},
      {"a method that is not a token", "G(T / HTTP/1.1\r\n" + H + "\r\n"},
      {"a space in the target", "GET /a b HTTP/1.1\r\n" + H + "\r\n"},
      {"a control character in the target", "GET /a\x01 HTTP/1.1\r\n" + H + "\r\n"},
      {"a target that is not origin-form", "GET a/b HTTP/1.1\r\n" + H + "\r\n"},
      {"an unknown HTTP version", "GET / HTTP/1.x\r\n" + H + "\r\n"},
      {"two spaces in the request line", "GET  / HTTP/1.1\r\n" + H + "\r\n"},
      {"a request line without a version", "GET /\r\n" + H + "\r\n"},
      // Targets that route one thing and send another (RFC 9112 §3.2, RFC 9110 §4.2).
      {"a fragment in the target", "GET /index.html#.png HTTP/1.1\r\n" + H + "\r\n"},
      {"user info in an absolute-form target", "GET http://internal:x@evil.com/ HTTP/1.1\r\n" + H + "\r\n"},
      {"an empty authority", "GET http:///x HTTP/1.1\r\n" + H + "\r\n"},
      {"a port that is not a number in an absolute-form target", "GET http://b:abc/x HTTP/1.1\r\n" + H + "\r\n"},
      {"a quote in an absolute-form authority", "GET http://b\"x/ HTTP/1.1\r\n" + H + "\r\n"},
      {"asterisk-form for a GET", "GET * HTTP/1.1\r\n" + H + "\r\n"},
  };
}

}  // namespace

TEST(StrictHttp, MalformedRequestsGet400AndNeverReachTheUpstream) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(one_route_config(up.address()), 1);
  auto cases = bad_requests();
  ASSERT_GE(cases.size(), 40u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.why);
    auto before = up.stats().at("requests").as_int64();
    std::string got = send_and_read(proxy.port, c.bytes);
    // A 400 and nothing else (no second response for a smuggled request), or a plain close.
    if (!got.empty()) {
      EXPECT_EQ(got.rfind("HTTP/1.1 400 ", 0), 0u) << got;
      EXPECT_EQ(got.find("HTTP/1.1", 1), std::string::npos) << got;
    }
    EXPECT_EQ(up.stats().at("requests").as_int64(), before) << "the upstream saw it";
  }
  // The proxy still serves everyone else.
  EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 200);
}

// Equal Content-Lengths, repeated or listed, are one length: the upstream
// gets a single Content-Length (RFC 9110 §8.6 forbids passing them on).
TEST(StrictHttp, RepeatedEqualContentLengthsGoUpstreamAsOne) {
  recording_upstream up("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  auto proxy = start_proxy(one_route_config(up.address()), 1);
  const std::vector<std::string> requests = {
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
  };
  for (const std::string& request : requests) {
    const std::string seen = forwarded_as(proxy.port, up, request);
    EXPECT_NE(seen.find("\r\ncontent-length: 3\r\n"), std::string::npos) << seen;
    EXPECT_EQ(seen.find("content-length"), seen.rfind("content-length")) << seen;
    EXPECT_NE(seen.find("\r\n\r\nabc"), std::string::npos) << seen;
  }
}

// A route may set the request's Host (as nginx's proxy_set_header Host): the
// upstream gets that one Host, also when the client's target was absolute.
TEST(StrictHttp, ARouteThatSetsHostSendsExactlyThatHost) {
  recording_upstream up("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  std::string config = one_route_config(up.address());
  config.replace(config.find("        split:"), 0, "        request_headers: {set: {Host: upstream.internal}}\n");
  auto proxy = start_proxy(config, 1);
  const std::vector<std::string> requests = {"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
                                             "GET http://y/b HTTP/1.1\r\nHost: x\r\n\r\n"};
  for (const std::string& request : requests) {
    const std::string seen = forwarded_as(proxy.port, up, request);
    EXPECT_NE(seen.find("\r\nhost: upstream.internal\r\n"), std::string::npos) << seen;
    EXPECT_EQ(seen.find("host:"), seen.rfind("host:")) << seen;
  }
}

// An absolute-form target goes upstream in origin form, with its authority
// as the Host; with no path, the path is "/" (RFC 9112 §3.2.1), also before
// a query.
TEST(StrictHttp, AnAbsoluteFormTargetGoesUpstreamInOriginForm) {
  recording_upstream up("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  auto proxy = start_proxy(one_route_config(up.address()), 1);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"http://b/p?x=1", "get /p?x=1 http/1.1\r\n"},
      {"http://b?q=1&r=/s", "get /?q=1&r=/s http/1.1\r\n"},
      {"HTTP://b:8080", "get / http/1.1\r\n"},
  };
  for (const auto& [target, line] : cases) {
    SCOPED_TRACE(target);
    const std::string seen = forwarded_as(proxy.port, up, "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(seen.rfind(line, 0), 0u) << seen;
    EXPECT_NE(seen.find("\r\nhost: b"), std::string::npos) << seen;
    EXPECT_EQ(seen.find("host:"), seen.rfind("host:")) << seen;
  }
}

// vane proxies requests, not tunnels: CONNECT (any target form) is 501 and
// never reaches the upstream.
TEST(StrictHttp, ConnectIsNotImplementedAndNeverReachesTheUpstream) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(one_route_config(up.address()), 1);
  for (const std::string target : {"b:443", "/"}) {
    SCOPED_TRACE(target);
    std::string got = send_and_read(proxy.port, "CONNECT " + target + " HTTP/1.1\r\nHost: b:443\r\n\r\n");
    EXPECT_EQ(got.rfind("HTTP/1.1 501 ", 0), 0u) << got;
  }
  EXPECT_EQ(up.stats().at("requests").as_int64(), 0);
}

TEST(StrictHttp, WellFormedEdgeCasesStillPass) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(one_route_config(up.address()), 1);
  for (const std::string& bytes : {
           std::string("GET / HTTP/1.1\r\nHost: x\r\nX-A:  spaced value \t\r\n\r\n"),  // OWS around a value
           std::string(
               "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd"),  // same value twice
           std::string("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                       "chunked\r\n\r\n4;ext=1\r\nabcd\r\n0\r\nX-Trailer: t\r\n\r\n"),
           std::string("GET / HTTP/1.1\r\nHost: x:8080\r\n\r\n"),
           std::string("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
           std::string("GET http://x/abs HTTP/1.1\r\nHost: x\r\n\r\n"),
       }) {
    SCOPED_TRACE(bytes);
    std::string got = send_and_read(proxy.port, bytes);
    EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << got;
  }
}

TEST(StrictHttp, MalformedResponsesBecome502AndTheirConnectionIsDropped) {
  const std::vector<std::pair<const char*, std::string>> responses = {
      {"Content-Length and Transfer-Encoding",
       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"two different Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"},
      {"Content-Length with letters", "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nab"},
      {"obs-fold", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\r\n b\r\n\r\nab"},
      {"NUL in a value", std::string("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\0b\r\n\r\nab", 46)},
      {"a bad status line", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nab"},
      {"a bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"},
      {"space before the colon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nab"},
      {"a status below 100", "HTTP/1.1 099 X\r\nContent-Length: 2\r\n\r\nab"},
      {"a coding other than chunked, before a Content-Length",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nab"},
      {"gzip then chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"},
      {"Transfer-Encoding on HTTP/1.0",
       "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
      {"a repeated Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab"},
      {"a Content-Length list", "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nab"},
  };
  for (const auto& [why, response] : responses) {
    SCOPED_TRACE(why);
    recording_upstream up(response);
    auto proxy = start_proxy(one_route_config(up.address()), 1);
    for (int i = 1; i <= 2; ++i) {
      std::string got = send_and_read(proxy.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      // Either nothing of it was sent (502), or a bad chunk found after the head went out cuts the response short.
      if (got.rfind("HTTP/1.1 200 ", 0) == 0)
        EXPECT_EQ(got.find("\r\n0\r\n\r\n"), std::string::npos) << got;
      else
        EXPECT_EQ(got.rfind("HTTP/1.1 502 ", 0), 0u) << got;
      EXPECT_TRUE(eventually([&] { return static_cast<int>(up.count()) == i; }));
    }
    EXPECT_EQ(up.connections(), 2) << "a connection that sent a bad response was reused";
  }
}

namespace {

// A keep-alive upstream that answers a HEAD with its head, and then, when the
// test says so, sends an unasked-for response on the same connection (as an
// upstream sending a body after a HEAD's answer does, in a later segment).
// GETs are answered "for TARGET".
class stray_upstream {
 public:
  stray_upstream() {
    acceptor_.open(boost::asio::ip::tcp::v4());
    acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    thread_ = std::thread([this] { run(); });
  }
  ~stray_upstream() {
    {
      const std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    boost::system::error_code ec;
    acceptor_.close(ec);
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }
  int connections() const { return connections_.load(); }
  // Lets the stray response go, and returns once it was written (or false on a deadline).
  bool send_stray() {
    std::unique_lock lock(mu_);
    go_ = true;
    cv_.notify_all();
    return cv_.wait_for(lock, std::chrono::seconds(10), [this] { return written_; });
  }

 private:
  void run() {
    serve_each_connection(acceptor_, connections_, [this](boost::asio::ip::tcp::socket s) { serve(s); });
  }
  void serve(boost::asio::ip::tcp::socket& s) {
    timeval tv{10, 0};
    setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string in;
    boost::system::error_code ec;
    while (!ec) {
      const std::size_t n = boost::asio::read_until(s, boost::asio::dynamic_buffer(in), "\r\n\r\n", ec);
      if (ec) break;
      const std::string head = in.substr(0, n);
      in.erase(0, n);
      const std::size_t target_at = head.find(' ') + 1;
      const std::string target = head.substr(target_at, head.find(' ', target_at) - target_at);
      if (head.rfind("HEAD ", 0) == 0) {
        boost::asio::write(s, boost::asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")), ec);
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return go_ || stop_; });
        if (stop_) break;
        boost::asio::write(s, boost::asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")), ec);
        written_ = true;
        cv_.notify_all();
        continue;
      }
      const std::string body = "for " + target;
      boost::asio::write(
          s,
          boost::asio::buffer("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body),
          ec);
    }
  }
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_{ioc_};
  std::thread thread_;
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool go_ = false, written_ = false, stop_ = false;
};

}  // namespace

// Bytes an upstream sends on a connection idle in the pool (here a body after
// a HEAD's answer, in a later segment) are never read as the answer to the
// next request that takes the connection: each later client would get the
// answer meant for the one before.
TEST(StrictHttp, BytesAnUpstreamSendsWhileIdleAreNeverTakenAsTheNextAnswer) {
  stray_upstream up;
  auto proxy = start_proxy(one_route_config(up.address()), 1);
  std::string got = send_and_read(proxy.port, "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << got;
  ASSERT_TRUE(up.send_stray());
  for (const std::string target : {"/b", "/c"}) {
    got = send_and_read(proxy.port, "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << got;
    EXPECT_EQ(got.substr(got.size() - std::min<std::size_t>(got.size(), 6)), "for " + target) << got;
  }
  EXPECT_EQ(up.connections(), 2) << "the connection that had sent the stray bytes was reused";
}

// An upstream that resets each connection right after its keep-alive answer
// (the reset reaches the proxy before the next request, or while it is being
// written): the pooled connection is dropped when the reuse's peek reads the
// reset, or the request's first write or read meets it and the request goes
// again on a new connection. No client sees an error, and no request reaches
// the upstream twice.
TEST(StrictHttp, AnUpstreamThatResetsAfterEachAnswerCostsBodilessRequestsNothing) {
  scripted_http_server up([](const scripted_request& r) {
    scripted_reply reply;
    reply.bytes = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(r.target.size()) + "\r\n\r\n" + r.target;
    reply.reset_after = true;
    return reply;
  });
  auto proxy = start_proxy(one_route_config("127.0.0.1:" + std::to_string(up.port())), 1);
  constexpr int requests = 40;
  for (int i = 0; i < requests; ++i) {
    const std::string target = "/r" + std::to_string(i);
    const std::string got = send_and_read(proxy.port, "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << "request " << i << ": " << got;
    EXPECT_EQ(got.substr(got.size() - std::min(got.size(), target.size())), target) << got;
  }
  EXPECT_EQ(up.requests(), requests);
}

namespace {

// A keep-alive upstream that answers the first request of each connection,
// then reads the second and closes without answering (as one that applied a
// request and then failed). Records each request line.
class answers_once_upstream {
 public:
  std::string address() const { return server_.address(); }
  // How many times `line` (a request line) arrived.
  int seen(const std::string& line) const {
    const std::lock_guard lock(mu_);
    int n = 0;
    for (const auto& l : lines_) n += l == line;
    return n;
  }

 private:
  void serve(boost::asio::ip::tcp::socket& s) {
    timeval tv{10, 0};
    setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string in;
    boost::system::error_code ec;
    for (int i = 0; i < 2 && !ec; ++i) {
      const std::size_t n = boost::asio::read_until(s, boost::asio::dynamic_buffer(in), "\r\n\r\n", ec);
      if (ec) break;
      {
        const std::lock_guard lock(mu_);
        lines_.push_back(in.substr(0, in.find("\r\n")));
      }
      in.erase(0, n);
      if (i == 0)
        boost::asio::write(s, boost::asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")), ec);
    }
  }
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
  threaded_upstream server_{[this](boost::asio::ip::tcp::socket& s) { serve(s); }};  // (last: first to go)
};

}  // namespace

// A pooled connection that ends after the request went out whole, before any
// answer: the upstream may have applied the request. An idempotent one is
// sent again on a new connection; any other is answered 502 and never sent
// twice (RFC 9110 §9.2.2).
TEST(StrictHttp, ARequestThatMayHaveBeenAppliedIsResentOnlyWhenIdempotent) {
  answers_once_upstream up;
  auto proxy = start_proxy(one_route_config(up.address()), 1);
  auto through = [&](const std::string& method, const std::string& target) {
    const std::string extra = method == "GET" ? "" : "Content-Length: 0\r\n";
    return send_and_read(proxy.port, method + " " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n");
  };
  EXPECT_EQ(through("GET", "/a").rfind("HTTP/1.1 200 ", 0), 0u);  // its connection is pooled
  std::string got = through("POST", "/charge");                   // on it: read, then closed
  EXPECT_EQ(got.rfind("HTTP/1.1 502 ", 0), 0u) << got;
  EXPECT_EQ(up.seen("POST /charge HTTP/1.1"), 1);
  EXPECT_EQ(through("GET", "/b").rfind("HTTP/1.1 200 ", 0), 0u);  // a new connection, pooled
  got = through("GET", "/c");                                     // on it: read, closed, sent again
  EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << got;
  EXPECT_EQ(up.seen("GET /c HTTP/1.1"), 2);
}

// An upstream that answers an upload before its end and stops reading it (a 413, then a close that
// resets: the body's rest is unread) is answered through: its answer goes to the client, not a 502,
// and the client's connection closes after it (the rest of the body would be read as a request).
TEST(StrictHttp, AnAnswerToAnUploadBeforeItsEndGoesToTheClient) {
  std::atomic<int> served{0};
  threaded_upstream up([&](boost::asio::ip::tcp::socket& s) {
    std::string in;
    boost::system::error_code ec;
    boost::asio::read_until(s, boost::asio::dynamic_buffer(in), "\r\n\r\n", ec);
    if (ec) return;
    ++served;
    const std::string answer =
        "HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large";
    boost::asio::write(s, boost::asio::buffer(answer), ec);
  });  // (the socket closes with the body's rest unread: a reset)
  auto proxy = start_proxy("limits: {max_body: 256MiB}\n" + one_route_config(up.address()), 1);
  // Far more than the sockets between client, proxy and upstream hold: the proxy's writes fail.
  constexpr std::size_t body = std::size_t{64} << 20;
  raw_connection c(proxy.port);
  c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body) + "\r\n\r\n");
  std::thread sender([fd = c.fd()] {
    const std::string piece(std::size_t{1} << 16, 'b');
    for (std::size_t sent = 0; sent < body;) {  // until the proxy closes (an error ends it)
      const ssize_t n = ::send(fd, piece.data(), std::min(piece.size(), body - sent), MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
  });
  const std::string got = c.read_all();
  sender.join();
  EXPECT_EQ(got.rfind("HTTP/1.1 413 ", 0), 0u) << got.substr(0, 200);
  EXPECT_NE(got.find("\r\n\r\ntoo large"), std::string::npos) << got.substr(0, 200);
  EXPECT_NE(lower(got).find("connection: close"), std::string::npos) << got.substr(0, 200);
  EXPECT_EQ(served.load(), 1);
  // The proxy goes on: the next request gets a fresh connection.
  EXPECT_EQ(send_and_read(proxy.port, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                .rfind("HTTP/1.1 413 ", 0),
            0u);
}

namespace {

// An upstream that answers each request with interim 103s, one every 50 ms,
// a final answer never coming (at most 400 of them, then it closes).
class interim_only_upstream {
 public:
  ~interim_only_upstream() {
    {
      const std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
  }
  std::string address() const { return server_.address(); }

 private:
  void serve(boost::asio::ip::tcp::socket& s) {
    std::string in;
    boost::system::error_code ec;
    boost::asio::read_until(s, boost::asio::dynamic_buffer(in), "\r\n\r\n", ec);
    for (int i = 0; i < 400 && !ec; ++i) {
      boost::asio::write(s, boost::asio::buffer(std::string("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")), ec);
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(50), [this] { return stop_; })) break;
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  threaded_upstream server_{[this](boost::asio::ip::tcp::socket& s) { serve(s); }};  // (last: first to go)
};

}  // namespace

// Interim answers do not extend the route's timeout: an upstream that sends
// 1xx on and on, and never its answer, is timed out (504) as a silent one is.
TEST(StrictHttp, InterimAnswersDoNotHoldARequestPastItsTimeout) {
  interim_only_upstream up;
  std::string config = one_route_config(up.address());
  config.replace(config.find("        split:"), 0, "        timeout: 1s\n");
  auto proxy = start_proxy(config, 1);
  const std::string got = send_and_read(proxy.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 504 ", 0), 0u) << got;
}

namespace {

std::string limits_config(const std::string& endpoint, const std::string& limits) {
  return "limits: {" + limits + "}\n" + one_route_config(endpoint);
}

// Raises this process's open-file limit (children inherit it): the slow-client case holds a thousand sockets.
void raise_fd_limit() {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = std::min<rlim_t>(r.rlim_max, 65536);
  setrlimit(RLIMIT_NOFILE, &r);
}

}  // namespace

TEST(Limits, TooLongTargetIs414) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(limits_config(up.address(), "max_request_target: 512"), 1);
  std::string got = send_and_read(proxy.port, "GET /" + std::string(600, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 414 ", 0), 0u) << got;
  got = send_and_read(proxy.port, "GET /" + std::string(500, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << got;
  EXPECT_EQ(up.stats().at("requests").as_int64(), 1);
  // The default (8 KiB) applies without the key.
  auto defaults = start_proxy(one_route_config(up.address()), 1);
  got = send_and_read(defaults.port, "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 414 ", 0), 0u) << got.substr(0, 100);
}

TEST(Limits, RequestsPerConnectionEndWithConnectionClose) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(limits_config(up.address(), "max_requests_per_connection: 3"), 1);
  raw_connection c(proxy.port);
  const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  c.send(get + get + get + get);   // pipelined: the fourth is never served
  std::string got = c.read_all();  // the proxy closes after the third
  std::size_t responses = 0, closes = 0;
  for (std::size_t p = 0; (p = got.find("HTTP/1.1 200 OK", p)) != std::string::npos; ++p) ++responses;
  for (std::size_t p = 0; (p = got.find("Connection: close", p)) != std::string::npos; ++p) ++closes;
  EXPECT_EQ(responses, 3u) << got;
  EXPECT_EQ(closes, 1u) << got;
  EXPECT_EQ(up.stats().at("requests").as_int64(), 3);
}

TEST(Limits, ConnectionsPastTheLimitAreClosedAndCountedOthersServed) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(limits_config(up.address(), "max_connections: 2"), 1);
  raw_connection a(proxy.port), b(proxy.port);
  const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  a.send(get);
  b.send(get);
  EXPECT_NE(a.read_until("\r\n\r\n").find("200 OK"), std::string::npos);
  EXPECT_NE(b.read_until("\r\n\r\n").find("200 OK"), std::string::npos);
  ASSERT_TRUE(eventually([&] {
    return fetch(proxy.admin_port, "GET", "/metrics")
               .body.find(R"(vane_downstream_connections_active{listener="http"} 2)") != std::string::npos;
  }));
  {
    raw_connection refused(proxy.port);
    refused.send(get);
    EXPECT_EQ(refused.read_all(), "");  // closed at accept
  }
  // The two open ones are still served; the refusal is counted.
  a.send("GET /again HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(a.read_until(R"("path":"/again")").find(R"("path":"/again")"), std::string::npos);
  auto metrics = fetch(proxy.admin_port, "GET", "/metrics").body;
  EXPECT_NE(metrics.find(R"(vane_downstream_connections_refused_total{listener="http"} 1)"), std::string::npos)
      << metrics;
}

TEST(Limits, InFlightPastTheLimitIs503) {
  // The first request stays at the (slow) upstream long enough for the second to be sent, even on a loaded machine.
  auto up = start_demo("v1", {"--latency", "8s"});
  auto proxy = start_proxy(limits_config(up.address(), "max_in_flight: 1"), 1);
  std::thread slow([&] { EXPECT_EQ(fetch(proxy.port, "GET", "/slow").status, 200); });
  // The first request is at the upstream (so in flight at the proxy) before the second is sent.
  ASSERT_TRUE(eventually([&] { return up.stats().at("service_connections").as_int64() == 1; }));
  auto second = fetch(proxy.port, "GET", "/second");
  EXPECT_EQ(second.status, 503);
  EXPECT_EQ(second.body, "overloaded\n");
  slow.join();
  EXPECT_EQ(up.stats().at("requests").as_int64(), 1);
  EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 200);  // not overloaded any more... but the demo is still slow
}

TEST(SlowClients, AThousandSlowHeadsDoNotStopANormalClient) {
  raise_fd_limit();
  auto up = start_demo("v1");
  auto proxy = start_proxy(limits_config(up.address(), "header_timeout: 60s"), 1);
  std::vector<std::unique_ptr<raw_connection>> slow;
  for (int i = 0; i < 1000; ++i) {
    slow.push_back(std::make_unique<raw_connection>(proxy.port));
    slow.back()->send("GET / HTTP/1.1\r\nHo");  // a head that never ends (slowloris)
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(fetch(proxy.port, "GET", "/").status, 200);
  EXPECT_EQ(up.stats().at("requests").as_int64(), 3);
  // All 1000 are held; the last few may still be in the listen backlog (or
  // their handshake retried after an overflow) when the three are answered.
  std::string metrics;
  EXPECT_TRUE(eventually([&] {
    metrics = fetch(proxy.admin_port, "GET", "/metrics").body;
    return metrics.find(R"(vane_downstream_connections_active{listener="http"} 1000)") != std::string::npos;
  })) << metrics.substr(metrics.find("vane_downstream_connections_active"), 120);
}

TEST(SlowClients, AHeadThatDoesNotCompleteInTimeIsClosed) {
  auto up = start_demo("v1");
  auto proxy = start_proxy(limits_config(up.address(), "header_timeout: 300ms"), 1);
  raw_connection c(proxy.port);
  c.send("GET / HTTP/1.1\r\nHo");
  EXPECT_EQ(c.read_all(), "");  // closed after header_timeout, without a response (as nginx)
  EXPECT_EQ(up.stats().at("requests").as_int64(), 0);
}
