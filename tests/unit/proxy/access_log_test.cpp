// The access log's ring (full -> drop and count) and its JSON lines.
#include "proxy/access_log.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

using namespace vane::proxy;
namespace json = boost::json;

TEST(AccessLog, AFullRingDropsAndCountsAndDrainsInOrder) {
  access_ring ring(4);
  for (int i = 0; i < 6; ++i) {
    if (access_record* r = ring.reserve()) {
      r->status = static_cast<std::uint16_t>(200 + i);
      ring.commit();
    }
  }
  EXPECT_EQ(ring.dropped(), 2u);
  std::vector<int> seen;
  EXPECT_EQ(ring.drain([&](const access_record& r) { seen.push_back(r.status); }), 4u);
  EXPECT_EQ(seen, (std::vector<int>{200, 201, 202, 203}));
  ASSERT_NE(ring.reserve(), nullptr);  // room again
  EXPECT_THROW(access_ring(3), std::invalid_argument);
}

TEST(AccessLog, LinesAreValidJsonWhateverTheClientSent) {
  access_record r;
  r.start_unix_us = 1'795'500'000'123'456;
  r.duration_us = 1500;
  r.status = 404;
  r.bytes_sent = 9;
  r.method.assign("GET");
  r.route.assign("none");
  r.cluster.assign("none");
  // (named, not a temporary: GCC 12's -Warray-bounds takes a temporary's 32-byte object for the copy's bound)
  std::string path = std::string("/a\"b\\c\x01\xff") + std::string(300, 'x');
  r.path.assign(path);
  r.request_id.assign("id-1");
  std::string line;
  format_access_line(r, line);
  ASSERT_EQ(line.back(), '\n');
  auto v = json::parse(line).as_object();
  EXPECT_EQ(v.at("time").as_string(), "2026-11-24T06:00:00.123Z");
  EXPECT_EQ(v.at("status").as_int64(), 404);
  EXPECT_EQ(v.at("duration_ms").as_double(), 1.5);
  EXPECT_EQ(v.at("upstream"), nullptr);
  EXPECT_EQ(v.at("request_id").as_string(), "id-1");
  // Cut at the record's 256 bytes; the byte 0xff is written as \u00ff, which reads back as 2 UTF-8 bytes.
  EXPECT_EQ(v.at("path").as_string().size(), 257u);
  EXPECT_EQ(v.at("path_truncated").as_bool(), true);
  EXPECT_EQ(std::string(v.at("path").as_string()).substr(0, 9), "/a\"b\\c\x01\xc3\xbf") << line;
}

// A write that fails (a full disk: /dev/full) loses its batch: counted as dropped, and said in the log.
TEST(AccessLog, LinesAFailedWriteLostAreCountedAsDropped) {
  access_logger log("/dev/full", 1);
  for (int i = 0; i < 3; ++i) {
    access_record* r = log.ring(0).reserve();
    ASSERT_NE(r, nullptr);
    r->status = 200;
    log.ring(0).commit();
  }
  log.start();
  log.stop();  // (the last batch is written, or lost, before it returns)
  EXPECT_EQ(log.dropped(), 3u);
  EXPECT_EQ(log.written(), 0u);
}
