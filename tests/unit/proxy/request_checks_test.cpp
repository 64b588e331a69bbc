// The checks before routing, on parsed heads: each refusal, and where an accepted request goes.
#include "proxy/request_checks.hpp"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <string>

#include "proxy/http1/parser.hpp"

using namespace vane::proxy;

namespace {

struct checked {
  std::optional<refusal> refused;
  request_target where;
};

checked check(const std::string& raw, const limits_config& limits = {}) {
  static message_head head;
  static std::vector<std::string_view> pieces;
  static std::string store;
  store = raw;  // the views point here until the next call
  h1_parser<true> p(head, pieces);
  p.header_limit(1 << 20);
  boost::system::error_code ec;
  p.put(boost::asio::buffer(store.data(), store.size()), ec);
  EXPECT_TRUE(!ec && p.is_header_done()) << ec.message() << ": " << raw;
  checked out;
  static std::string target_store;
  out.refused = check_request(head, limits, out.where, target_store);
  return out;
}

unsigned status_of(const std::string& raw, const limits_config& limits = {}) {
  auto c = check(raw, limits);
  return c.refused ? c.refused->status : 0;
}

}  // namespace

TEST(RequestChecks, RefusalsAndTheirStatuses) {
  limits_config small;
  small.max_headers = 3;
  small.max_header_field = 20;
  small.max_request_target = 10;
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", small), 431U);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789abcdef\r\n\r\n", small), 431U);
  EXPECT_EQ(status_of("GET /0123456789 HTTP/1.1\r\nHost: a\r\n\r\n", small), 414U);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\n\r\n"), 400U);                        // no Host on 1.1
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400U);  // two
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400U);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), 400U);
  EXPECT_EQ(status_of("GET x HTTP/1.1\r\nHost: a\r\n\r\n"), 400U);
  EXPECT_EQ(status_of("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0U);
}

TEST(RequestChecks, WhereARequestGoes) {
  auto plain = check("GET /p?q=1 HTTP/1.1\r\nHost: a.example:8080\r\n\r\n");
  ASSERT_FALSE(plain.refused);
  EXPECT_EQ(plain.where.target, "/p?q=1");
  EXPECT_EQ(plain.where.host, "a.example:8080");
  EXPECT_TRUE(plain.where.host_override.empty());
  EXPECT_TRUE(plain.where.has_host);

  auto absolute = check("GET http://b.example/x/y HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_FALSE(absolute.refused);
  EXPECT_EQ(absolute.where.target, "/x/y");
  EXPECT_EQ(absolute.where.host, "b.example");
  EXPECT_EQ(absolute.where.host_override, "b.example");

  auto bare = check("GET HTTPS://c.example HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(bare.where.target, "/");
  EXPECT_EQ(bare.where.host, "c.example");

  // No path before the query: the path is "/" (RFC 9112 §3.2.1).
  auto query = check("GET http://d.example:81?q=1&r=/x HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_FALSE(query.refused);
  EXPECT_EQ(query.where.target, "/?q=1&r=/x");
  EXPECT_EQ(query.where.host, "d.example:81");
  EXPECT_EQ(check("GET http://?q HTTP/1.1\r\nHost: a\r\n\r\n").refused->status, 400U);  // no authority

  auto old = check("GET / HTTP/1.0\r\n\r\n");  // HTTP/1.0 may come without Host
  ASSERT_FALSE(old.refused);
  EXPECT_FALSE(old.where.has_host);
  EXPECT_TRUE(old.where.host.empty());
}
