// The checks vane adds to Beast's parser at the trust boundary.
#include "proxy/strict.hpp"

#include <gtest/gtest.h>

using vane::proxy::has_bad_line_break;
using vane::proxy::valid_host;

TEST(Strict, ObsFoldIsFoundInTheHeadOnly) {
  EXPECT_TRUE(has_bad_line_break("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n"));
  EXPECT_TRUE(has_bad_line_break("GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n"));
  EXPECT_TRUE(has_bad_line_break("GET / HTTP/1.1\r\nX-A: a\r\n b"));  // the head is not complete yet
  EXPECT_FALSE(has_bad_line_break("GET / HTTP/1.1\r\nX-A: a b\r\n\r\n"));
  EXPECT_FALSE(has_bad_line_break("POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n\r\n x"));  // in the body: not a fold
  EXPECT_FALSE(has_bad_line_break("GET / HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_FALSE(has_bad_line_break("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n\n x"));  // a body starting with LF SP
  EXPECT_TRUE(has_bad_line_break("GET / HTTP/1.1\r\nX-A: a\n\r\n b\r\n\r\n"));           // LF CR LF is not the end
  EXPECT_TRUE(has_bad_line_break("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r"));
}

TEST(Strict, ABareLineFeedIsFoundBeforeTheHeadEnds) {
  EXPECT_TRUE(has_bad_line_break("GET / HTTP/1.1\r\nHost: x\r\n\n"));  // would never end the head
  EXPECT_TRUE(has_bad_line_break("GET / HTTP/1.1\nHost: x"));
  EXPECT_TRUE(has_bad_line_break("\nGET / HTTP/1.1\r\n"));
  EXPECT_FALSE(has_bad_line_break("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody\nwith LF"));  // the body is not the head
  EXPECT_FALSE(has_bad_line_break("GET / HTTP/1.1\r\nHost: x\r"));                     // its LF is still to come
}

TEST(Strict, HostIsAHostAndAPort) {
  for (const char* good : {"", "x", "podinfo.local", "podinfo.local:8080", "10.0.0.1:80", "[::1]", "[::1]:8080",
                           "[2001:db8::1]:443", "a-b_c~d.e", "xn--bcher-kva.example", "host:"})
    EXPECT_TRUE(valid_host(good)) << good;
  for (const char* bad : {"a b", "a/b", "a?b", "a#b", "a@b", ":80", "x:8o", "x:123456", "[::1", "[]", "[zz::1]",
                          "[::1]x", "a\tb", "a:1:2"})
    EXPECT_FALSE(valid_host(bad)) << bad;
}
