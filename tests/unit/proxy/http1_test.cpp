// The HTTP/1.x codec of the request path without sockets: the parser's
// views and body pieces, and the heads written from them.
#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <string>
#include <vector>

#include "proxy/http1/head_out.hpp"
#include "proxy/http1/parser.hpp"
#include "proxy/http1/request_view.hpp"
#include "proxy/http2/frames.hpp"
#include "proxy/strict.hpp"

namespace http = boost::beast::http;
using namespace vane::proxy;

namespace {

// Parses `raw` whole with the proxy's request parser; the head's views are
// moved into `store`, as read_head does.
struct parsed {
  message_head head;
  std::vector<std::string_view> pieces;
  std::string store;
  boost::system::error_code ec;
  std::size_t used = 0;
};

template <bool isRequest>
void parse(std::string_view raw, parsed& out, h1_parser<isRequest>& p) {
  out.used = p.put(boost::asio::buffer(raw.data(), raw.size()), out.ec);
  if (out.ec || !p.is_header_done()) return;
  out.store.assign(raw.data(), out.used);
  p.rebase(raw.data(), out.used, out.store.data());
}

std::string names(const message_head& h) {
  std::string out;
  for (const auto& f : h.fields) out.append(f.name).append(";");
  return out;
}

std::string request_head_of(std::string_view raw, const request_out& how_in = {}) {
  parsed r;
  h1_parser<true> p(r.head, r.pieces);
  parse(raw, r, p);
  EXPECT_FALSE(r.ec) << r.ec.message();
  request_out how = how_in;
  if (how.target.empty()) how.target = r.head.target;
  std::string out;
  write_request_head(r.head, how, out);
  return out;
}

}  // namespace

TEST(Http1Parser, TheHeadIsViewsIntoTheStore) {
  std::string raw = "GET /a?b=1 HTTP/1.1\r\nHost: x.example\r\nX-Dup: 1\r\nx-dup:  2 \r\nCookie: c=d\r\n\r\n";
  parsed r;
  h1_parser<true> p(r.head, r.pieces);
  parse(raw, r, p);
  ASSERT_FALSE(r.ec);
  raw.assign(raw.size(), '#');  // the received bytes are gone: the views must not point there
  EXPECT_EQ(r.head.method, "GET");
  EXPECT_EQ(r.head.target, "/a?b=1");
  EXPECT_EQ(r.head.version, 11U);
  EXPECT_EQ(names(r.head), "Host;X-Dup;x-dup;Cookie;");
  EXPECT_EQ(r.head.find(http::field::host).value_or(""), "x.example");
  EXPECT_EQ(r.head.find("X-DUP").value_or(""), "1");
  EXPECT_EQ(r.head.fields[2].value, "2");  // whitespace around a value is not part of it
  EXPECT_EQ(r.head.count(http::field::host), 1U);
  EXPECT_TRUE(p.is_done());
  head_request_view view(r.head, r.head.target, "10.0.0.1");
  EXPECT_EQ(view.headers("x-dup"), (std::vector<std::string_view>{"1", "2"}));
  EXPECT_EQ(view.header("cookie").value_or(""), "c=d");
  EXPECT_FALSE(view.header("missing"));
}

TEST(Http1Parser, BodiesComeOutAsPiecesOfTheInput) {
  const std::string raw =
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n3;ext=1\r\n, w\r\n0\r\nX-Trailer: dropped\r\n\r\nGET /next HTTP/1.1\r\n";
  parsed r;
  h1_parser<true> p(r.head, r.pieces);
  parse(raw, r, p);
  ASSERT_FALSE(r.ec);
  ASSERT_TRUE(p.chunked());
  p.eager(true);
  const std::string_view rest = std::string_view(raw).substr(r.used);
  boost::system::error_code ec;
  const std::size_t used = p.put(boost::asio::buffer(rest.data(), rest.size()), ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(p.is_done());
  EXPECT_EQ(rest.substr(used), "GET /next HTTP/1.1\r\n");  // the next request is left alone
  EXPECT_EQ(r.pieces, (std::vector<std::string_view>{"hello", ", w"}));
  EXPECT_EQ(r.pieces[0].data(), rest.data() + 3);       // not copied
  EXPECT_EQ(names(r.head), "Host;Transfer-Encoding;");  // the trailer is not a head field
}

TEST(Http1Parser, ResponsesAndLimitsAreBeasts) {
  parsed r;
  h1_parser<false> p(r.head, r.pieces);
  parse("HTTP/1.1 503 Busy Now\r\nContent-Length: 2\r\n\r\nok", r, p);
  ASSERT_FALSE(r.ec);
  EXPECT_EQ(r.head.status, 503U);
  EXPECT_EQ(r.head.reason, "Busy Now");
  EXPECT_EQ(p.content_length().value_or(0), 2U);

  parsed big;
  h1_parser<true> q(big.head, big.pieces);
  q.body_limit(10);
  parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", big, q);
  EXPECT_EQ(big.ec, http::error::body_limit);
}

TEST(Http1Head, HopByHopFieldsAndTheFieldsConnectionNamesAreNotPassedOn) {
  const std::string out = request_head_of(
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nx-secret: 1\r\nKeep-Alive: timeout=5\r\n"
      "Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: x\r\nUpgrade: websocket\r\nx-kept: yes\r\n"
      "Connection: close, x-other\r\nX-Other: 2\r\nUser-Agent: ua\r\n\r\n");
  EXPECT_EQ(out, "GET / HTTP/1.1\r\nHost: a\r\nx-kept: yes\r\nUser-Agent: ua\r\n\r\n");
}

TEST(Http1Head, WithoutNamesInConnectionOnlyTheFixedOnesGo) {
  EXPECT_EQ(request_head_of("GET / HTTP/1.1\r\nKeep-Alive: timeout=5\r\nclose: a field\r\nHost: a\r\n\r\n"),
            "GET / HTTP/1.1\r\nclose: a field\r\nHost: a\r\n\r\n");
  EXPECT_EQ(request_head_of("GET / HTTP/1.1\r\nConnection: close\r\nclose: kept\r\nHost: a\r\n\r\n"),
            "GET / HTTP/1.1\r\nclose: kept\r\nHost: a\r\n\r\n");
}

TEST(Http1Head, ConnectionNeverErasesTheFieldsThatFrameOrRouteAMessage) {
  // Erasing Content-Length would turn the body into the next request upstream.
  EXPECT_EQ(request_head_of("POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length, HOST, transfer-encoding, "
                            "x-gone\r\nContent-Length: 4\r\nx-gone: 1\r\n\r\n"),
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n");
}

TEST(Http1Head, UntrustedForwardingFieldsAreReplaced) {
  const std::string raw =
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.9\r\nx-forwarded-proto: https\r\n"
      "Via: 1.0 edge\r\nx-kept: yes\r\n\r\n";
  parsed r;
  h1_parser<true> p(r.head, r.pieces);
  parse(raw, r, p);
  forwarded_fields fw;
  fw.collect(r.head, "127.0.0.1", "http", false);
  EXPECT_EQ(fw.lines(), "x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nVia: 1.0 edge, 1.1 vane\r\n");
  std::string out;
  write_request_head(r.head, {.target = r.head.target, .forwarded = &fw}, out);
  EXPECT_EQ(out,
            "GET / HTTP/1.1\r\nHost: a\r\nx-kept: yes\r\nx-forwarded-for: 127.0.0.1\r\n"
            "x-forwarded-proto: http\r\nVia: 1.0 edge, 1.1 vane\r\n\r\n");
}

TEST(Http1Head, TrustedForwardingFieldsAreAppendedToAndKept) {
  const std::string raw =
      "GET / HTTP/1.1\r\nx-forwarded-for: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
      "X-Forwarded-For: 198.51.100.1, 10.0.0.1\r\nHost: a\r\n\r\n";
  parsed r;
  h1_parser<true> p(r.head, r.pieces);
  parse(raw, r, p);
  forwarded_fields fw;
  fw.collect(r.head, "127.0.0.1", "http", true);
  EXPECT_EQ(fw.lines(), "x-forwarded-for: 203.0.113.9, 198.51.100.1, 10.0.0.1, 127.0.0.1\r\nVia: 1.1 vane\r\n");
  std::string out;
  write_request_head(r.head, {.target = "/", .forwarded = &fw}, out);
  EXPECT_EQ(out,
            "GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\nHost: a\r\n"
            "x-forwarded-for: 203.0.113.9, 198.51.100.1, 10.0.0.1, 127.0.0.1\r\nVia: 1.1 vane\r\n\r\n");
  // Reused for the next request on the connection: nothing carried over.
  parsed next;
  h1_parser<true> q(next.head, next.pieces);
  parse("GET / HTTP/1.1\r\nHost: b\r\n\r\n", next, q);
  fw.collect(next.head, "127.0.0.2", "https", true);
  EXPECT_EQ(fw.lines(), "x-forwarded-for: 127.0.0.2\r\nx-forwarded-proto: https\r\nVia: 1.1 vane\r\n");
}

TEST(Http1Head, RouteOperationsHostFramingAndExpect) {
  vane::proxy::header_ops ops;
  ops.remove = {"x-drop"};
  ops.set = {{"X-Env", "canary"}};
  ops.add = {{"x-add", "1"}};
  const std::string out = request_head_of(
      "POST http://b.example/p HTTP/1.1\r\nHost: a\r\nx-env: old\r\nX-Drop: 1\r\nExpect: 100-continue\r\n"
      "Transfer-Encoding: chunked\r\nx-add: 0\r\n\r\n",
      {.target = "/p", .host = "b.example", .ops = &ops, .chunked = true, .drop_expect = true});
  EXPECT_EQ(out,
            "POST /p HTTP/1.1\r\nx-add: 0\r\nX-Env: canary\r\nx-add: 1\r\nHost: b.example\r\n"
            "Transfer-Encoding: chunked\r\n\r\n");
  // A mirror's copy: its body whole, its length said.
  EXPECT_EQ(request_head_of("PUT /m HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
                            {.host = "a-shadow", .content_length = 3}),
            "PUT /m HTTP/1.1\r\nHost: a-shadow\r\nContent-Length: 3\r\n\r\n");
}

// An HTTP/2 upstream's fields are made from the received head directly; they
// are the ones the HTTP/1.1 head written for the same request would give.
TEST(Http1Head, HTTP2FieldsAreTheOnesTheHTTP1HeadWouldCarry) {
  vane::proxy::header_ops ops;
  ops.remove = {"x-drop"};
  ops.set = {{"X-Env", "canary"}};
  ops.add = {{"x-add", " 1 "}};  // (whitespace around a value: HTTP/2 forbids it, both drop it)
  const std::string heads[] = {
      "GET /a?b HTTP/1.1\r\nHost: Example.COM\r\nUser-Agent: ua\r\nAccept: */*\r\n\r\n",
      "POST /p HTTP/1.1\r\nHost: a\r\nx-env: old\r\nX-Drop: 1\r\nExpect: 100-continue\r\n"
      "Transfer-Encoding: chunked\r\nx-add: 0\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n"
      "TE: trailers\r\nContent-Type: application/grpc\r\n\r\n",
      "PUT /m HTTP/1.1\r\nX-Forwarded-For: 203.0.113.9\r\nx-forwarded-proto: https\r\nVia: 1.0 edge\r\n"
      "Content-Length: 3\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.0\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"};
  for (const std::string& raw : heads) {
    parsed r;
    h1_parser<true> p(r.head, r.pieces);
    parse(raw, r, p);
    ASSERT_FALSE(r.ec) << raw;
    for (const bool trust : {false, true}) {
      forwarded_fields fw;
      fw.collect(r.head, "127.0.0.1", "http", trust);
      const request_out hows[] = {
          {.target = r.head.target, .forwarded = &fw},
          {.target = "/p", .host = "b.example", .ops = &ops, .forwarded = &fw, .chunked = true, .drop_expect = true},
          {.target = "/m", .host = "a-shadow", .content_length = 3},
      };
      for (const request_out& how : hows) {
        for (const bool grpc : {false, true}) {
          std::string text, names;
          write_request_head(r.head, how, text);
          std::vector<nghttp2_nv> from_text, direct;
          ASSERT_TRUE(h2_request_fields(text, false, grpc, names, from_text));
          h2_request_scratch scratch;
          ASSERT_TRUE(h2_request_fields(r.head, how, false, grpc, scratch, direct));
          auto pairs = [](const std::vector<nghttp2_nv>& nva) {
            std::vector<std::pair<std::string, std::string>> out;
            out.reserve(nva.size());
            for (const auto& nv : nva)
              out.emplace_back(std::string(reinterpret_cast<const char*>(nv.name), nv.namelen),
                               std::string(reinterpret_cast<const char*>(nv.value), nv.valuelen));
            return out;
          };
          EXPECT_EQ(pairs(direct), pairs(from_text)) << text;
        }
      }
    }
  }
}

TEST(Http1Head, ValueSentIsAfterTheRouteOperations) {
  parsed r;
  h1_parser<true> p(r.head, r.pieces);
  parse("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: client\r\n\r\n", r, p);
  EXPECT_EQ(value_sent(r.head, nullptr, "x-request-id").value_or(""), "client");
  vane::proxy::header_ops ops;
  ops.set = {{"x-request-id", "route"}};
  EXPECT_EQ(value_sent(r.head, &ops, "x-request-id").value_or(""), "route");
  ops.set.clear();
  ops.remove = {"X-Request-ID"};
  EXPECT_FALSE(value_sent(r.head, &ops, "x-request-id"));
  ops.add = {{"x-request-id", "added"}};
  EXPECT_EQ(value_sent(r.head, &ops, "x-request-id").value_or(""), "added");
}

TEST(Http1Head, ResponseHeads) {
  parsed r;
  h1_parser<false> p(r.head, r.pieces);
  parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=4\r\nX-A: 1\r\n\r\n", r,
        p);
  const std::string cookie = "vane-canary=1; Path=/";
  const std::array<const std::string*, 2> cookies{&cookie, nullptr};
  vane::proxy::header_ops ops;
  ops.add = {{"x-served-by", "vane"}};
  std::string out;
  write_response_head(r.head, {.ops = &ops, .cookies = cookies, .connection = connection_for(true, 10)}, out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nx-served-by: vane\r\n"
            "Set-Cookie: vane-canary=1; Path=/\r\nConnection: keep-alive\r\n\r\n");
  write_response_head(r.head, {.chunked = true, .connection = connection_for(false, 11)}, out);
  EXPECT_EQ(
      out, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(connection_for(true, 11), connection_header::none);

  parsed e;
  h1_parser<false> q(e.head, e.pieces);
  parse("HTTP/1.1 404 \r\n\r\n", e, q);  // no reason received: the standard one
  write_response_head(e.head, {}, out);
  EXPECT_EQ(out, "HTTP/1.1 404 Not Found\r\n\r\n");
}

TEST(Http1Head, LocalReplies) {
  std::string out;
  write_local_reply(503, "overloaded\n", connection_header::none, out);
  EXPECT_EQ(out,
            "HTTP/1.1 503 Service Unavailable\r\nServer: vane\r\nContent-Type: text/plain\r\nContent-Length: "
            "11\r\n\r\noverloaded\n");
  write_local_reply(404, "", connection_header::close, out);
  EXPECT_EQ(out,
            "HTTP/1.1 404 Not Found\r\nServer: vane\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            "Content-Length: 0\r\n\r\n");
}

TEST(Http1Strict, OnlyOneChunkedOnHttp11) {
  const auto acceptable = [](std::string_view raw) {
    parsed r;
    h1_parser<true> p(r.head, r.pieces);
    parse(raw, r, p);
    return !r.ec && read_framing_fields(r.head).transfer_encoding_ok;  // (Beast refuses some itself)
  };
  EXPECT_TRUE(acceptable("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_TRUE(acceptable("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(acceptable("POST / HTTP/1.1\r\nTransfer-Encoding:  Chunked\t\r\n\r\n"));
  EXPECT_FALSE(acceptable("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"));
  for (const char* bad : {"gzip", "gzip, chunked", "chunked, gzip", "chunked, chunked", "xchunked"})
    EXPECT_FALSE(acceptable(std::string("POST / HTTP/1.1\r\nTransfer-Encoding: ") + bad + "\r\n\r\n")) << bad;
  EXPECT_FALSE(acceptable("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"));
}
