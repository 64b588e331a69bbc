// The stream's steps alone: a fake request (a parsed head, no socket)
// through check, route, split, limits, header rewrite, faults and mirror on a
// worker that is never started. What each step decides, and what end() undoes.
#include "proxy/request_stream.hpp"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>

#include "proxy/config_load.hpp"
#include "proxy/http1/parser.hpp"
#include "proxy/route_table.hpp"
#include "proxy/stats.hpp"
#include "proxy/stream_state.hpp"
#include "proxy/worker.hpp"

namespace vane::proxy {
namespace {

const char* const config_text = R"(listeners:
  - name: http
    address: 127.0.0.1:8080
    routes:
      - name: aborted
        match: {path_prefix: /abort}
        fault: {abort: {status: 418, percent: 100}}
        split: [{cluster: primary, weight: 100}]
      - name: shop
        match: {host: shop.example.com, path_prefix: /api}
        rules: [{match: [{headers: {x-canary: {exact: always}}}], cluster: canary}]
        request_headers: {set: {x-env: prod}}
        mirror: {cluster: shadow, percent: 50}
        split: [{cluster: primary, weight: 100}, {cluster: canary, weight: 0}]
clusters:
  - {name: primary, endpoints: ["127.0.0.1:9898"]}
  - {name: canary, endpoints: ["127.0.0.1:9899"]}
  - {name: shadow, endpoints: ["127.0.0.1:9897"]}
)";

struct fixture {
  std::shared_ptr<const route_table> table;
  stats_store stats{1};
  std::unique_ptr<worker> w;
  request_scratch scratch;
  message_head head;
  std::vector<std::string_view> pieces;
  std::string bytes;
  stream_request req;
  std::optional<request_meter> meter;
  std::optional<stream_context> cx;

  fixture() {
    std::vector<config_error> errors;
    auto config = parse_proxy_config(config_text, "stream.yaml", errors);
    if (!config) throw std::runtime_error(errors.empty() ? "bad config" : errors.front().message);
    std::string error;
    table = build_route_table(*config, 1, table_inputs{}, error);
    if (!table) throw std::runtime_error(error);
    w = std::make_unique<worker>(0, table, stats);
  }
  // Parses `text` as the client's head and begins a stream on it.
  stream_state& begin(std::string text) {
    bytes = std::move(text);
    h1_parser<true> p(head, pieces);
    boost::system::error_code ec;
    p.put(boost::asio::buffer(bytes), ec);
    EXPECT_FALSE(ec) << ec.message();
    req = {};
    req.head = &head;
    req.client_ip = "10.0.0.1";
    req.scheme = "http";
    meter.emplace(nullptr);
    cx.emplace(stream_context{*w, w->policy(), 0, scratch, *meter});
    scratch.stream.begin(*cx, req, *w->policy(), *table);
    return scratch.stream;
  }
  // Begins a stream on `text` and runs the steps until one stops it or all ran; `next` says how far.
  std::size_t next = 0;
  step_result run(std::string text) {
    stream_state& s = begin(std::move(text));
    step_result r;
    next = 0;
    while (next < step_count && !(r = run_steps(s, next)).stops()) {
    }
    return r;
  }
};

TEST(StreamSteps, ARefusedHeadStopsAtTheChecksAndCloses) {
  fixture f;
  const step_result r = f.run("GET / HTTP/1.1\r\nHost: a b\r\n\r\n");
  EXPECT_EQ(r.status, 400u);
  EXPECT_TRUE(r.close);
  EXPECT_EQ(f.next, 1u);
  f.scratch.stream.end();
}

TEST(StreamSteps, NoRouteIs404AndKeepsTheConnection) {
  fixture f;
  const step_result r = f.run("GET /elsewhere HTTP/1.1\r\nHost: other.example.com\r\n\r\n");
  auto& s = f.scratch.stream;
  EXPECT_EQ(r.status, 404u);
  EXPECT_FALSE(r.close);
  EXPECT_EQ(s.route, nullptr);
  EXPECT_EQ(f.meter->cluster, unrouted_label);  // counted as unrouted
  s.end();
}

TEST(StreamSteps, ARuleSplitsHeadersAreRewrittenAndTheMirrorShareIsExact) {
  fixture f;
  int mirrored = 0;
  for (int i = 0; i < 4; ++i) {
    const step_result r =
        f.run("GET /api/items HTTP/1.1\r\nHost: shop.example.com\r\nX-Canary: always\r\nX-Env: dev\r\n\r\n");
    auto& s = f.scratch.stream;
    EXPECT_FALSE(r.stops());
    EXPECT_EQ(f.next, step_count);
    ASSERT_NE(s.route, nullptr);
    EXPECT_EQ(s.route->name, "shop");
    EXPECT_EQ(s.picked->name, "canary");  // the rule, though the split gives the canary 0
    EXPECT_EQ(f.meter->cluster, "canary");
    EXPECT_EQ(f.w->in_flight(), 1u);
    const std::string& up = f.scratch.upstream_head;
    EXPECT_EQ(up.rfind("GET /api/items HTTP/1.1\r\n", 0), 0u) << up;
    EXPECT_NE(up.find("x-env: prod\r\n"), std::string::npos) << up;
    EXPECT_EQ(up.find("X-Env: dev"), std::string::npos) << up;
    EXPECT_NE(up.find("x-forwarded-for: 10.0.0.1\r\n"), std::string::npos) << up;
    mirrored += s.mirror_stats != nullptr;
    s.end();
    EXPECT_EQ(f.w->in_flight(), 0u);
  }
  EXPECT_EQ(mirrored, 2);  // 50%, exact
}

TEST(StreamSteps, OverloadIs503BeforeAnythingIsCounted) {
  fixture f;
  for (std::uint32_t i = 0; i < f.table->limits.max_in_flight; ++i) f.w->begin_in_flight();
  EXPECT_EQ(f.run("GET /api HTTP/1.1\r\nHost: shop.example.com\r\n\r\n").status, 503u);
  f.scratch.stream.end();
  EXPECT_EQ(f.w->in_flight(), f.table->limits.max_in_flight);  // the refused request was not counted
}

TEST(StreamSteps, ARouteFaultAbortsWithItsStatus) {
  fixture f;
  const step_result r = f.run("POST /abort HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(r.status, 418u);
  EXPECT_EQ(r.body, "fault filter abort\n");
  EXPECT_EQ(f.scratch.stream.route->name, "aborted");
  f.scratch.stream.end();
  EXPECT_EQ(f.w->in_flight(), 0u);
}

}  // namespace
}  // namespace vane::proxy
