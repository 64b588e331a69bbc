// vane-demo's HTTP/2 side: gRPC with a real client (python3-grpcio through
// tests/support/grpc_client.py), the status it can be told to fail calls with
// (with HTTP 200), bad gRPC framing and bad frames (nghttp and raw bytes), and
// its HTTP endpoints over h2c with prior knowledge (curl, nghttp).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "tests/support/fixtures.hpp"
#include "tests/support/grpc.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

using namespace vane::test;
namespace json = boost::json;

namespace {

const char* curl = "/usr/bin/curl";
const char* nghttp = "/usr/bin/nghttp";

std::string url(const demo_instance& d, const std::string& path) { return "http://" + d.address() + path; }

std::uint64_t stat(const json::object& stats, const char* key) {
  return static_cast<std::uint64_t>(stats.at(key).as_int64());
}
std::uint64_t grpc_stat(const json::object& stats, const char* status) {
  const auto* v = stats.at("grpc_status").as_object().if_contains(status);
  return v ? static_cast<std::uint64_t>(v->as_int64()) : 0;
}

// A gRPC request body (length-prefixed messages) written to a file, for nghttp -d.
std::string body_file(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::string path = dir + "/" + name;
  write_file(path, bytes);
  return path;
}

// nghttp -v: one gRPC POST with this body; the frames it received, as text.
std::string raw_grpc_call(const demo_instance& d, const std::string& method, const std::string& file) {
  auto [code, out] =
      run(nghttp, {"-v", "-d", file, "-H", "content-type: application/grpc", "-H", "te: trailers", url(d, method)});
  EXPECT_EQ(code, 0) << out;
  return out;
}

class DemoGrpc : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(grpcio_available()) << "python3-grpcio is missing: bash scripts/setup.sh"; }
};

}  // namespace

TEST_F(DemoGrpc, EchoAnswersWithTheMessageAndTheVersion) {
  auto d = start_demo("6.1.0");
  auto r = grpc_calls(d.address(), {"--method", "echo", "--message", "héllo", "--calls", "5"});
  ASSERT_TRUE(r.ok()) << r.output;
  EXPECT_EQ(r.calls(), 5u) << r.output;
  EXPECT_EQ(r.status("OK"), 5u) << r.output;
  EXPECT_EQ(r.version("6.1.0"), 5u) << r.output;  // the x-version header
  EXPECT_EQ(json::value_to<std::uint64_t>(r.report.at("reply_versions").at("6.1.0")), 5u) << r.output;
  EXPECT_EQ(r.report.at("mismatched").as_int64(), 0) << r.output;  // the message came back as sent
  auto stats = d.stats();
  EXPECT_EQ(stat(stats, "grpc_calls"), 5u);
  EXPECT_EQ(grpc_stat(stats, "OK"), 5u);
  EXPECT_EQ(stat(stats, "requests"), 0u);  // gRPC calls are not HTTP requests
  EXPECT_GE(stat(stats, "h2_connections"), 1u);
}

TEST_F(DemoGrpc, CountStreamsThatManyReplies) {
  auto d = start_demo("v1");
  auto r = grpc_calls(d.address(), {"--method", "count", "--count", "2500", "--calls", "2"});
  ASSERT_TRUE(r.ok()) << r.output;
  EXPECT_EQ(r.status("OK"), 2u) << r.output;
  EXPECT_EQ(r.messages(), 5000u) << r.output;
  EXPECT_EQ(r.report.at("mismatched").as_int64(), 0) << r.output;  // each stream had exactly 2500
  auto zero = grpc_calls(d.address(), {"--method", "count", "--count", "0"});
  EXPECT_EQ(zero.status("OK"), 1u) << zero.output;
  EXPECT_EQ(zero.messages(), 0u) << zero.output;
  auto too_many = grpc_calls(d.address(), {"--method", "count", "--count", "10001"});
  EXPECT_EQ(too_many.status("INVALID_ARGUMENT"), 1u) << too_many.output;
}

TEST_F(DemoGrpc, HealthCheckServesTheDemoServiceOnly) {
  auto d = start_demo("v1", {"--error-percent", "100"});  // health checks are never failed on purpose
  for (const char* service : {"", "vane.demo.v1.Demo"}) {
    auto r = grpc_calls(d.address(), {"--method", "health", "--service", service});
    ASSERT_TRUE(r.ok()) << r.output;
    EXPECT_EQ(r.status("OK"), 1u) << service << r.output;
    EXPECT_EQ(json::value_to<std::uint64_t>(r.report.at("health").at("SERVING")), 1u) << r.output;
  }
  auto unknown = grpc_calls(d.address(), {"--method", "health", "--service", "other.Service"});
  EXPECT_EQ(unknown.status("NOT_FOUND"), 1u) << unknown.output;
  auto watch = grpc_calls(d.address(), {"--method", "watch"});  // the first reply, then the client cancels
  EXPECT_EQ(json::value_to<std::uint64_t>(watch.report.at("health").at("SERVING")), 1u) << watch.output;
  EXPECT_EQ(stat(d.stats(), "grpc_calls"), 0u);  // health calls are not service calls
}

TEST_F(DemoGrpc, ErrorPercentFailsExactlyThatShareWithTheConfiguredStatus) {
  auto d = start_demo("v2", {"--error-percent", "50", "--grpc-error-status", "unavailable"});
  auto r = grpc_calls(d.address(), {"--method", "echo", "--calls", "100", "--concurrency", "4"});
  ASSERT_TRUE(r.ok()) << r.output;
  EXPECT_EQ(r.status("OK"), 50u) << r.output;
  EXPECT_EQ(r.status("UNAVAILABLE"), 50u) << r.output;
  EXPECT_EQ(r.details("UNAVAILABLE"), "injected failure") << r.output;
  EXPECT_EQ(r.version_status("v2", "UNAVAILABLE"), 50u) << r.output;  // failures carry x-version too
  auto stats = d.stats();
  EXPECT_EQ(stat(stats, "grpc_calls"), 100u);
  EXPECT_EQ(stat(stats, "grpc_errors"), 50u);
  EXPECT_EQ(grpc_stat(stats, "UNAVAILABLE"), 50u);
  EXPECT_EQ(grpc_stat(stats, "OK"), 50u);

  // Streams too, and the status changed at runtime (by name or by number).
  d.configure(R"({"grpc_error_status": 13})");
  auto streams = grpc_calls(d.address(), {"--method", "count", "--count", "3", "--calls", "10"});
  EXPECT_EQ(streams.status("OK"), 5u) << streams.output;
  EXPECT_EQ(streams.status("INTERNAL"), 5u) << streams.output;
  EXPECT_EQ(streams.messages(), 15u) << streams.output;
  EXPECT_EQ(fetch(d.port, "PUT", "/_demo/config", {}, R"({"grpc_error_status": "ok"})").status, 400);
  EXPECT_EQ(fetch(d.port, "PUT", "/_demo/config", {}, R"({"grpc_error_status": 17})").status, 400);
}

TEST_F(DemoGrpc, AFailedCallIsHttp200WithTheStatusInATrailersOnlyResponse) {
  auto d = start_demo("v3", {"--error-percent", "100", "--grpc-error-status", "14"});
  const std::string dir = make_temp_dir();
  const std::string echo = std::string("\0\0\0\0\x07\x0a\x05hello", 12);
  auto out = raw_grpc_call(d, "/vane.demo.v1.Demo/Echo", body_file(dir, "echo", echo));
  EXPECT_NE(out.find("recv (stream_id=13) :status: 200"), std::string::npos) << out;
  EXPECT_NE(out.find("recv (stream_id=13) content-type: application/grpc"), std::string::npos) << out;
  EXPECT_NE(out.find("recv (stream_id=13) x-version: v3"), std::string::npos) << out;
  EXPECT_NE(out.find("recv (stream_id=13) grpc-status: 14"), std::string::npos) << out;
  EXPECT_NE(out.find("recv (stream_id=13) grpc-message: injected failure"), std::string::npos) << out;
  EXPECT_NE(out.find("; END_STREAM | END_HEADERS"), std::string::npos) << out;  // one HEADERS frame ends it
  EXPECT_EQ(out.find("recv DATA"), std::string::npos) << out;

  d.configure(R"({"error_percent": 0})");  // an answer: HEADERS, DATA, then the trailers
  out = raw_grpc_call(d, "/vane.demo.v1.Demo/Echo", body_file(dir, "echo", echo));
  const auto data = out.find("recv DATA");
  const auto status = out.find("grpc-status: 0");
  ASSERT_NE(data, std::string::npos) << out;
  ASSERT_NE(status, std::string::npos) << out;
  EXPECT_LT(out.find("x-version: v3"), data) << out;
  EXPECT_LT(data, status) << out;
}

TEST_F(DemoGrpc, UnknownMethodsAndCompressedMessagesAreUnimplemented) {
  auto d = start_demo("v1", {"--error-percent", "100"});  // not counted as service calls either
  for (const char* method : {"/vane.demo.v1.Demo/Nope", "/other.v1.Service/Echo"}) {
    auto r = grpc_calls(d.address(), {"--method", method});
    ASSERT_TRUE(r.ok()) << r.output;
    EXPECT_EQ(r.status("UNIMPLEMENTED"), 1u) << r.output;
    EXPECT_EQ(r.version("v1"), 1u) << r.output;
  }
  d.configure(R"({"error_percent": 0})");
  // grpcio compresses a message only when that makes it smaller: a long, repetitive one.
  auto r = grpc_calls(d.address(), {"--compression", "gzip", "--message", std::string(2000, 'a')});
  EXPECT_EQ(r.status("UNIMPLEMENTED"), 1u) << r.output;
  EXPECT_EQ(grpc_stat(d.stats(), "UNIMPLEMENTED"), 3u);
}

TEST_F(DemoGrpc, LatencyAppliesToCalls) {
  auto d = start_demo("v1", {"--latency", "60s"});
  auto r = grpc_calls(d.address(), {"--deadline", "0.5"});
  EXPECT_EQ(r.status("DEADLINE_EXCEEDED"), 1u) << r.output;
  // The client cancelled the stream at its deadline: the call is not left waiting out its latency.
  EXPECT_TRUE(eventually([&] { return grpc_stat(d.stats(), "CANCELLED") == 1; }));
  auto health = grpc_calls(d.address(), {"--method", "health", "--deadline", "30"});  // not delayed
  EXPECT_EQ(health.status("OK"), 1u) << health.output;
}

TEST_F(DemoGrpc, ResetPercentResetsThatShareOfStreams) {
  auto d = start_demo("v1", {"--reset-percent", "20"});
  auto r = grpc_calls(d.address(), {"--calls", "10"});
  ASSERT_TRUE(r.ok()) << r.output;
  EXPECT_EQ(r.status("OK"), 8u) << r.output;
  EXPECT_EQ(r.status("INTERNAL"), 2u) << r.output;  // RST_STREAM(INTERNAL_ERROR), as grpcio maps it
  EXPECT_EQ(stat(d.stats(), "resets"), 2u);
}

TEST_F(DemoGrpc, BadGrpcFramingGetsAnErrorAndBadFramesACloseNeverACrash) {
  auto d = start_demo("v1");
  const std::string dir = make_temp_dir();
  struct bad_case {
    const char* name;
    std::string body;
    const char* status;
  };
  const std::vector<bad_case> cases{
      {"truncated", std::string("\0\0\0\0\x09\x0a\x05hello", 12), "grpc-status: 13"},
      {"short-prefix", std::string("\0\0\0", 3), "grpc-status: 13"},
      {"two-messages", std::string("\0\0\0\0\0\0\0\0\0\0", 10), "grpc-status: 13"},
      {"compressed", std::string("\x01\0\0\0\x02\x0a\x00", 7), "grpc-status: 12"},
      {"bad-flag", std::string("\x07\0\0\0\0", 5), "grpc-status: 13"},
      {"bad-protobuf", std::string("\0\0\0\0\x03\x0a\x05h", 8), "grpc-status: 13"},
      {"group-wire-type", std::string("\0\0\0\0\x01\x0b", 6), "grpc-status: 13"},
  };
  for (const auto& c : cases) {
    auto out = raw_grpc_call(d, "/vane.demo.v1.Demo/Echo", body_file(dir, c.name, c.body));
    EXPECT_NE(out.find(c.status), std::string::npos) << c.name << "\n" << out;
    EXPECT_NE(out.find(":status: 200"), std::string::npos) << c.name << "\n" << out;
  }
  // A bad CountRequest (a string where an int32 goes) and a bad HealthCheckRequest.
  auto out =
      raw_grpc_call(d, "/vane.demo.v1.Demo/Count", body_file(dir, "count", std::string("\0\0\0\0\x03\x0a\x01x", 8)));
  EXPECT_NE(out.find("grpc-status: 13"), std::string::npos) << out;
  out = raw_grpc_call(d, "/grpc.health.v1.Health/Check", body_file(dir, "health", std::string("\0\0\0\0\x01\x08", 6)));
  EXPECT_NE(out.find("grpc-status: 13"), std::string::npos) << out;

  // Frames that break HTTP/2 itself: the connection is closed (after a GOAWAY), nothing else.
  for (const std::string& garbage :
       {std::string("\xff\xff\xff\x00\x00\x00\x00\x00\x00", 9),       // a frame larger than SETTINGS_MAX_FRAME_SIZE
        std::string("\x00\x00\x04\x01\x05\x00\x00\x00\x02xxxx", 13),  // HEADERS on an even stream, bad HPACK
        std::string("GET / HTTP/1.1\r\n\r\n")}) {                     // no SETTINGS after the preface
    raw_connection c(d.port);
    c.send(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + garbage);
    c.read_all();
  }
  EXPECT_TRUE(eventually([&] { return stat(d.stats(), "connections_active") == 1; }));  // this one
  auto r = grpc_calls(d.address(), {});
  EXPECT_EQ(r.status("OK"), 1u) << r.output;
}

TEST(DemoH2c, PriorKnowledgeServesTheHttpEndpoints) {
  auto d = start_demo("6.0.0");
  auto [code, out] = run(curl, {"-sS", "-i", "--http2-prior-knowledge", url(d, "/healthz")});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("HTTP/2 200"), std::string::npos) << out;
  EXPECT_NE(out.find("x-version: 6.0.0"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\n\r\nok\n"), std::string::npos) << out;

  std::tie(code, out) = run(curl, {"-sS", "-i", "--http2-prior-knowledge", url(d, "/some/path?q=1")});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("HTTP/2 200"), std::string::npos) << out;
  EXPECT_NE(out.find("x-version: 6.0.0"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("version":"6.0.0")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("path":"/some/path")"), std::string::npos) << out;

  // A body: the same size and checksum as over HTTP/1.1.
  const std::string body(100000, 'x');
  const std::string dir = make_temp_dir();
  write_file(dir + "/body", body);
  std::tie(code, out) =
      run(curl, {"-sS", "--http2-prior-knowledge", "--data-binary", "@" + dir + "/body", url(d, "/up")});
  ASSERT_EQ(code, 0) << out;
  auto h1 = json::parse(fetch(d.port, "POST", "/up", {}, body).body).as_object();
  auto h2 = json::parse(out).as_object();
  EXPECT_EQ(h2.at("received"), h1.at("received")) << out;
  EXPECT_EQ(h2.at("checksum"), h1.at("checksum")) << out;

  // Request headers; bytes; several streams on one connection (nghttp).
  std::tie(code, out) = run(curl, {"-sS", "--http2-prior-knowledge", "-H", "x-a: 1", url(d, "/headers")});
  EXPECT_NE(out.find(R"("x-a":"1")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("host":")" + d.address() + "\""), std::string::npos) << out;
  std::tie(code, out) = run(
      curl, {"-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{size_download}", url(d, "/bytes/300000")});
  EXPECT_EQ(out, "300000");
  std::tie(code, out) = run(nghttp, {"-s", url(d, "/a"), url(d, "/b"), url(d, "/c"), url(d, "/healthz")});
  EXPECT_EQ(code, 0) << out;
  auto stats = d.stats();
  EXPECT_EQ(stat(stats, "requests"), 8u) << json::serialize(stats);  // not /healthz
  EXPECT_EQ(stat(stats, "bytes_received"), 200000u);

  // Injected failures as over HTTP/1.1.
  d.configure(R"({"error_percent": 100, "error_status": 503})");
  std::tie(code, out) =
      run(curl, {"-sS", "-o", "/dev/null", "-w", "%{http_code}", "--http2-prior-knowledge", url(d, "/")});
  EXPECT_EQ(out, "503");
  EXPECT_EQ(fetch(d.port, "GET", "/").status, 503);  // HTTP/1.1 on the same port
}

TEST_F(DemoGrpc, MaxStreamsIsAdvertised) {
  auto d = start_demo("v1", {"--h2-max-streams", "2"});
  auto [code, out] = run(nghttp, {"-v", url(d, "/healthz")});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):2]"), std::string::npos) << out;
  EXPECT_EQ(stat(d.stats(), "h2_max_streams"), 2u);
  // grpcio keeps to it (8 calls at once on one connection: 2 streams at a time), and every call is answered.
  auto r = grpc_calls(d.address(), {"--calls", "100", "--concurrency", "8"});
  EXPECT_EQ(r.status("OK"), 100u) << r.output;
}
