// write_head gives byte for byte what Beast's serializer writes for the same head.
#include "proxy/head_writer.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http.hpp>
#include <sstream>

namespace http = boost::beast::http;

namespace {

template <class Message>
std::string beast_bytes(const Message& m) {
  std::ostringstream os;
  os << m;
  return os.str();
}

}  // namespace

TEST(HeadWriter, RequestHeadIsWhatBeastWrites) {
  http::request<http::empty_body> req{http::verb::get, "/a/b?x=1&y=%20", 11};
  req.set(http::field::host, "podinfo.local:8080");
  req.insert("X-Custom", "v1");
  req.insert("x-custom", "v2");  // repeated, different case: both kept, in order
  req.set(http::field::user_agent, "curl/7.88.1");
  req.insert("x-empty", "");
  std::string out;
  vane::proxy::write_head(req, out);
  EXPECT_EQ(out, beast_bytes(req));
  EXPECT_EQ(out.substr(0, 32), "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHos");

  http::request<http::empty_body> odd;
  odd.method_string("PROPFIND");  // not a verb Beast knows by name
  odd.target("*");
  odd.version(10);
  vane::proxy::write_head(odd, out);
  EXPECT_EQ(out, beast_bytes(odd));
  EXPECT_EQ(out, "PROPFIND * HTTP/1.0\r\n\r\n");
}

TEST(HeadWriter, ResponseHeadIsWhatBeastWrites) {
  http::response<http::empty_body> res{http::status::not_found, 11};
  res.set(http::field::content_length, "0");
  res.set(http::field::server, "vane");
  res.insert(http::field::set_cookie, "a=1");
  res.insert(http::field::set_cookie, "b=2");
  std::string out;
  vane::proxy::write_head(res, out);
  EXPECT_EQ(out, beast_bytes(res));
  EXPECT_EQ(out.substr(0, 24), "HTTP/1.1 404 Not Found\r\n");

  res.result(599);
  res.reason("Custom Reason");  // an upstream's own reason phrase is passed on
  vane::proxy::write_head(res, out);
  EXPECT_EQ(out, beast_bytes(res));
  EXPECT_EQ(out.substr(0, 31), "HTTP/1.1 599 Custom Reason\r\nCon");
}
