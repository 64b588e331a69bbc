// The head rewrite done for every proxied request: hop-by-hop fields out, the
// forwarding fields replaced or appended to, in the order the client sent.
#include "proxy/head_rewrite.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http.hpp>

#include "proxy/head_writer.hpp"

namespace http = boost::beast::http;

namespace {

std::string names(const http::fields& f) {
  std::string out;
  for (const auto& field : f) out.append(field.name_string()).append(";");
  return out;
}

}  // namespace

TEST(HeadRewrite, HopByHopFieldsAndTheFieldsConnectionNamesAreErased) {
  http::fields f;
  f.insert(http::field::host, "a");
  f.insert(http::field::connection, "keep-alive, X-Secret");
  f.insert("x-secret", "1");
  f.insert(http::field::keep_alive, "timeout=5");
  f.insert("Proxy-Connection", "keep-alive");
  f.insert(http::field::te, "trailers");
  f.insert(http::field::trailer, "x");
  f.insert(http::field::transfer_encoding, "chunked");
  f.insert(http::field::upgrade, "websocket");
  f.insert("x-kept", "yes");
  f.insert(http::field::connection, "close, x-other");
  f.insert("X-Other", "2");
  f.insert(http::field::user_agent, "ua");
  vane::proxy::remove_hop_by_hop(f);
  EXPECT_EQ(names(f), "Host;x-kept;User-Agent;");
}

TEST(HeadRewrite, WithoutConnectionOnlyTheFixedOnesGo) {
  http::fields f;
  f.insert(http::field::keep_alive, "timeout=5");
  f.insert("close", "a field named like a connection option");
  f.insert(http::field::host, "a");
  vane::proxy::remove_hop_by_hop(f);
  EXPECT_EQ(names(f), "close;Host;");
  http::fields g;
  g.insert(http::field::connection, "close");
  g.insert("close", "kept: close is an option, not a field name");
  vane::proxy::remove_hop_by_hop(g);
  EXPECT_EQ(names(g), "close;");
}

TEST(HeadRewrite, ConnectionNeverErasesTheFieldsThatFrameOrRouteAMessage) {
  // Erasing Content-Length would turn the body into the next request upstream.
  http::fields f;
  f.insert(http::field::host, "a");
  f.insert(http::field::connection, "Content-Length, HOST, transfer-encoding, x-gone");
  f.insert(http::field::content_length, "4");
  f.insert("x-gone", "1");
  vane::proxy::remove_hop_by_hop(f);
  EXPECT_EQ(names(f), "Host;Content-Length;");
  EXPECT_EQ(f[http::field::content_length], "4");
  EXPECT_EQ(f[http::field::host], "a");
}

TEST(HeadRewrite, UntrustedForwardingFieldsAreReplaced) {
  http::request_header<> req;
  req.method(http::verb::get);
  req.target("/");
  req.version(11);
  req.insert(http::field::host, "a");
  req.insert("X-Forwarded-For", "203.0.113.9");
  req.insert("x-forwarded-proto", "https");
  req.insert(http::field::via, "1.0 edge");
  req.insert("x-kept", "yes");
  vane::proxy::forwarded_fields fw;
  fw.rewrite(req, "127.0.0.1", "http", false);
  EXPECT_EQ(names(req), "Host;x-kept;");
  EXPECT_EQ(fw.lines(), "x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nVia: 1.0 edge, 1.1 vane\r\n");
  std::string head;
  vane::proxy::write_head(req, head, fw.lines());
  EXPECT_EQ(head,
            "GET / HTTP/1.1\r\nHost: a\r\nx-kept: yes\r\nx-forwarded-for: 127.0.0.1\r\n"
            "x-forwarded-proto: http\r\nVia: 1.0 edge, 1.1 vane\r\n\r\n");
}

TEST(HeadRewrite, TrustedForwardingFieldsAreAppendedToAndKept) {
  http::fields f;
  f.insert("x-forwarded-for", "203.0.113.9");
  f.insert("X-Forwarded-Proto", "https");
  f.insert("X-Forwarded-For", "198.51.100.1, 10.0.0.1");
  vane::proxy::forwarded_fields fw;
  fw.rewrite(f, "127.0.0.1", "http", true);
  EXPECT_EQ(names(f), "X-Forwarded-Proto;");
  EXPECT_EQ(fw.lines(), "x-forwarded-for: 203.0.113.9, 198.51.100.1, 10.0.0.1, 127.0.0.1\r\nVia: 1.1 vane\r\n");
  // The same values set on a copy (a mirrored request).
  http::fields copy;
  copy.insert("x-forwarded-for", "stale");
  fw.set_on(copy);
  EXPECT_EQ(copy["x-forwarded-for"], "203.0.113.9, 198.51.100.1, 10.0.0.1, 127.0.0.1");
  EXPECT_EQ(copy.count("x-forwarded-proto"), 0U);
  EXPECT_EQ(copy[http::field::via], "1.1 vane");
  // Reused for the next request on the connection: nothing carried over.
  http::fields next;
  fw.rewrite(next, "127.0.0.2", "https", true);
  EXPECT_EQ(fw.lines(), "x-forwarded-for: 127.0.0.2\r\nx-forwarded-proto: https\r\nVia: 1.1 vane\r\n");
  http::fields copy2;
  fw.set_on(copy2);
  EXPECT_EQ(copy2["x-forwarded-proto"], "https");
  EXPECT_EQ(copy2["x-forwarded-for"], "127.0.0.2");
}
