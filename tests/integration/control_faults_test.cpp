// vane-control against peers that answer badly: a scripted Prometheus and
// scripted proxies (real sockets on 127.0.0.1, ports picked by the OS) that
// interleave well-formed answers with odd shapes — wrong JSON types, nulls,
// empty arrays, NaN, huge numbers, HTML error pages, truncated bodies, slow
// answers, 3xx, 5xx, closed connections. Every run still ends Succeeded or
// Failed as its data says, within its deadline; an unreadable answer is a
// reason (logged once per change, shown by `status`), never a dead loop; a
// tick that does not come is shown by the watchdog. Tests wait for
// conditions with deadlines, never for time.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "tests/support/fixtures.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/scripted_http.hpp"

using namespace vane::test;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

struct shape {
  std::string name;
  scripted_reply reply;
  std::chrono::milliseconds good_after{0};  // not odd in content: the well-formed answer, this late
};

// The well-formed answer, or this shape's odd one.
scripted_reply reply_for(const shape* s, const std::function<scripted_reply()>& good) {
  if (!s) return good();
  if (s->good_after.count() == 0) return s->reply;
  auto r = good();
  r.delay = s->good_after;
  return r;
}

scripted_reply truncated(const std::string& body) {  // Content-Length promises more than comes
  scripted_reply r;
  r.bytes =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size() + 100) +
      "\r\nConnection: close\r\n\r\n" + body;
  return r;
}
scripted_reply closed() {
  scripted_reply r;
  r.close_without_answer = true;
  return r;
}
scripted_reply raw(std::string bytes) {
  scripted_reply r;
  r.bytes = std::move(bytes);
  return r;
}
const std::string html_page =
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";

// The shapes every peer may answer, whatever was asked.
std::vector<shape> transport_shapes() {
  return {
      {"HTML error page, 200", http_reply(200, html_page, "text/html")},
      {"HTML error page, 502", http_reply(502, html_page, "text/html")},
      {"503 with a text body", http_reply(503, "upstream connect error", "text/plain")},
      {"500 with an empty body", http_reply(500, "")},
      {"302 to elsewhere", http_reply(302, "", "text/plain", "Location: http://127.0.0.1:1/\r\n")},
      {"301 moved", http_reply(301, "<html>moved</html>", "text/html", "Location: /elsewhere\r\n")},
      {"empty body, 200", http_reply(200, "")},
      {"truncated body (Content-Length not reached)", truncated(R"({"status":"success","data":{"re)")},
      {"connection closed without an answer", closed()},
      {"not HTTP at all", raw("HELLO THERE\r\n\r\n")},
      {"a bad chunked body", raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n")},
      {"JSON null", http_reply(200, "null")},
      {"a JSON array instead of an object", http_reply(200, "[]")},
      {"a JSON string instead of an object", http_reply(200, R"("ok")")},
      {"NaN literal (not JSON)", http_reply(200, R"({"value": NaN})")},
  };
}

std::string prom_vector(const std::string& value_json) {
  return R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,)" +
         value_json + "]}]}}";
}

// Prometheus /api/v1/query answers of odd shapes.
std::vector<shape> prometheus_shapes() {
  auto out = transport_shapes();
  std::vector<shape> more = {
      {"value as a JSON number (not a string)", http_reply(200, prom_vector("0"))},
      {"value text not a number", http_reply(200, prom_vector(R"("abc")"))},
      {"value null", http_reply(200, prom_vector("null"))},
      {"value true", http_reply(200, prom_vector("true"))},
      {"value an object", http_reply(200, prom_vector(R"({"v":1})"))},
      {"value NaN", http_reply(200, prom_vector(R"("NaN")"))},
      {"empty result", http_reply(200, R"({"status":"success","data":{"resultType":"vector","result":[]}})")},
      {"result null", http_reply(200, R"({"status":"success","data":{"resultType":"vector","result":null}})")},
      {"result an object", http_reply(200, R"({"status":"success","data":{"resultType":"vector","result":{}}})")},
      {"result of numbers", http_reply(200, R"({"status":"success","data":{"resultType":"vector","result":[1,2,3]}})")},
      {"sample with one element",
       http_reply(200, R"({"status":"success","data":{"resultType":"vector","result":[{"value":[1]}]}})")},
      {"sample value a string",
       http_reply(200, R"({"status":"success","data":{"resultType":"vector","result":[{"value":"0"}]}})")},
      {"series without a value",
       http_reply(200, R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}})")},
      {"a matrix",
       http_reply(200, R"({"status":"success","data":{"resultType":"matrix","result":[{"values":[[1,"0"]]}]}})")},
      {"data a string", http_reply(200, R"({"status":"success","data":"x"})")},
      {"data null", http_reply(200, R"({"status":"success","data":null})")},
      {"status a number", http_reply(200, R"({"status":1,"data":{}})")},
      {"status error, 200", http_reply(200, R"({"status":"error","errorType":"timeout","error":"query timed out"})")},
      {"400 bad_data", http_reply(400, R"({"status":"error","errorType":"bad_data","error":"parse error"})")},
      {"huge number text 1e400", http_reply(200, prom_vector(R"("1e400")"))},
      {"huge JSON number", http_reply(200, prom_vector("123456789012345678901234567890"))},
      {"value -Inf", http_reply(200, prom_vector(R"("-Inf")"))},
      {"slow (1.5 s), then well-formed", {}, 1500ms},
  };
  out.insert(out.end(), more.begin(), more.end());
  return out;
}

std::string stats_answer(std::uint64_t ok, std::uint64_t errors, const std::string& route = "app") {
  auto part = [](std::uint64_t ok, std::uint64_t errors) {
    return R"({"count":)" + std::to_string(ok + errors) + R"(,"sum":1,"codes":{"200":)" + std::to_string(ok) +
           R"(,"503":)" + std::to_string(errors) + R"(},"buckets":[[1000,1016,)" + std::to_string(ok + errors) + "]]}";
  };
  return R"({"process_start_time":1700000000.5,"unit":"microseconds","generation":1,"routes":[{"route":")" + route +
         R"(","cluster":"app-canary","upstream":)" + part(ok, errors) + R"(},{"route":")" + route +
         R"(","cluster":"app-primary","upstream":)" + part(ok, 0) + "}]}";
}

// /stats/latency answers of odd shapes.
std::vector<shape> stats_shapes() {
  auto out = transport_shapes();
  std::vector<shape> more = {
      {"process_start_time a string", http_reply(200, R"({"process_start_time":"1","routes":[]})")},
      {"routes an object", http_reply(200, R"({"process_start_time":1,"routes":{}})")},
      {"routes null", http_reply(200, R"({"process_start_time":1,"routes":null})")},
      {"no routes", http_reply(200, R"({"process_start_time":1})")},
      {"a route entry a number", http_reply(200, R"({"routes":[7]})")},
      {"route name a number", http_reply(200, R"({"routes":[{"route":1,"cluster":"app-canary"}]})")},
      {"cluster a number", http_reply(200, R"({"routes":[{"route":"app","cluster":5,"upstream":{}}]})")},
      {"upstream a string", http_reply(200, R"({"routes":[{"route":"app","cluster":"app-canary","upstream":"x"}]})")},
      {"codes as strings",
       http_reply(200, R"({"routes":[{"route":"app","cluster":"app-canary","upstream":{"codes":{"200":"100"}}}]})")},
      {"a negative count",
       http_reply(200, R"({"routes":[{"route":"app","cluster":"app-canary","upstream":{"codes":{"200":-5}}}]})")},
      {"a count of 1e300",
       http_reply(200, R"({"routes":[{"route":"app","cluster":"app-canary","upstream":{"codes":{"200":1e300}}}]})")},
      {"a fractional count",
       http_reply(200, R"({"routes":[{"route":"app","cluster":"app-canary","upstream":{"codes":{"200":1.5}}}]})")},
      {"counts that overflow",
       http_reply(
           200,
           R"({"routes":[{"route":"app","cluster":"app-canary","upstream":{"codes":{"200":18446744073709551615,"503":18446744073709551615}}}]})")},
      {"codes an array",
       http_reply(200, R"({"routes":[{"route":"app","cluster":"app-canary","upstream":{"codes":[]}}]})")},
      {"buckets a string",
       http_reply(200, R"({"routes":[{"route":"app","cluster":"app-canary","upstream":{"buckets":"x"}}]})")},
      {"a bucket of two numbers",
       http_reply(200, R"({"routes":[{"route":"app","cluster":"app-canary","upstream":{"buckets":[[1,2]]}}]})")},
      {"a bucket of nulls",
       http_reply(200,
                  R"({"routes":[{"route":"app","cluster":"app-canary","upstream":{"buckets":[[null,null,null]]}}]})")},
      {"slow (1.5 s), then well-formed", {}, 1500ms},
      {"slower than the 5 s timeout", {}, 6s},
  };
  out.insert(out.end(), more.begin(), more.end());
  return out;
}

// /clusters answers of odd shapes (read while the promotion waits for a healthy primary).
std::vector<shape> clusters_shapes() {
  return {
      {"clusters: HTML 503", http_reply(503, html_page, "text/html")},
      {"clusters a string", http_reply(200, R"({"clusters":"app-primary"})")},
      {"clusters missing", http_reply(200, R"({})")},
      {"healthy_endpoints a string",
       http_reply(200, R"({"clusters":[{"name":"app-primary","healthy_endpoints":"1"}]})")},
      {"a cluster name null", http_reply(200, R"({"clusters":[{"name":null,"healthy_endpoints":1}]})")},
      {"a cluster entry a number", http_reply(200, R"({"clusters":[1]})")},
      {"clusters: connection closed", closed()},
  };
}

// PUT /routes/NAME/traffic answers of odd shapes (the controller only needs the 200).
std::vector<shape> traffic_shapes() {
  return {
      {"traffic: 500 HTML", http_reply(500, html_page, "text/html")},
      {"traffic: 307 redirect", http_reply(307, "", "text/plain", "Location: /x\r\n")},
      {"traffic: connection closed", closed()},
      {"traffic: 200 with a truncated body", truncated("{")},
  };
}

// Odd shapes interleaved with well-formed answers (odd, good, odd, good, ...), or all odd ones first,
// until every shape was served once; then well-formed answers only.
class feed {
 public:
  explicit feed(std::vector<shape> shapes, bool interleave = true)
      : shapes_(std::move(shapes)), interleave_(interleave) {}
  // The odd shape for this request, or nullptr for a well-formed answer.
  const shape* next() {
    std::lock_guard lock(mu_);
    bool odd = (!interleave_ || n_++ % 2 == 0) && served_ < shapes_.size();
    return odd ? &shapes_[served_++] : nullptr;
  }
  std::size_t served() const {
    std::lock_guard lock(mu_);
    return served_;
  }
  std::size_t size() const { return shapes_.size(); }
  void skip_all() {
    std::lock_guard lock(mu_);
    served_ = shapes_.size();
  }

 private:
  std::vector<shape> shapes_;
  bool interleave_;
  mutable std::mutex mu_;
  std::size_t n_ = 0, served_ = 0;
};

// A scripted vane-proxy admin API: PUT traffic, /stats/latency with counts growing by 100 canary requests
// (errors_per_100 of them 5xx) per well-formed answer, /clusters with a healthy primary.
struct fake_proxy {
  feed stats, clusters, traffic;
  std::uint64_t errors_per_100;
  std::mutex mu;
  std::uint64_t ok = 0, errors = 0;
  std::atomic<int> puts{0};
  scripted_http_server server;

  fake_proxy(bool odd, std::uint64_t errors_per_100)
      : stats(odd ? stats_shapes() : std::vector<shape>{}),
        clusters(odd ? clusters_shapes() : std::vector<shape>{}, false),  // one promotion: all of them in a row
        traffic(odd ? traffic_shapes() : std::vector<shape>{}),
        errors_per_100(errors_per_100),
        server([this](const scripted_request& r) { return answer(r); }) {}

  scripted_reply answer(const scripted_request& r) {
    if (r.method == "PUT" && r.target.starts_with("/routes/")) {
      ++puts;
      return reply_for(traffic.next(), [&] { return http_reply(200, r.body); });
    }
    if (r.target == "/stats/latency") {
      return reply_for(stats.next(), [&] {
        std::lock_guard lock(mu);
        ok += 100 - errors_per_100;
        errors += errors_per_100;
        return http_reply(200, stats_answer(ok, errors));
      });
    }
    if (r.target == "/clusters") {
      return reply_for(clusters.next(), [] {
        return http_reply(200, R"({"clusters":[{"name":"app-primary","healthy_endpoints":1},)"
                               R"({"name":"app-canary","healthy_endpoints":1}]})");
      });
    }
    return http_reply(404, R"({"error":"not found"})");
  }
};

// A scripted Prometheus whose well-formed answers carry `value`.
struct fake_prometheus {
  feed shapes;
  std::atomic<bool> readable{true};
  std::string value;
  scripted_http_server server;
  fake_prometheus(bool odd, std::string value)
      : shapes(odd ? prometheus_shapes() : std::vector<shape>{}),
        value(std::move(value)),
        server([this](const scripted_request& r) {
          if (!r.target.starts_with("/api/v1/query?query=")) return http_reply(404, "{}");
          if (!readable) return http_reply(200, html_page, "text/html");
          return reply_for(shapes.next(), [this] { return http_reply(200, prom_vector("\"" + this->value + "\"")); });
        }) {}
};

std::string canary_doc(const std::string& name, const std::string& revision, const std::string& proxy_url,
                       const std::string& analysis) {
  return "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: " + name +
         ", namespace: test}\nspec:\n  targetRef: {name: app}\n  revision: \"" + revision +
         "\"\n  route: app\n  proxies: [" + proxy_url +
         "]\n  promote: {command: [\"true\"], timeout: 60s}\n  analysis:\n    interval: 300ms\n" + analysis;
}

std::string template_doc(const std::string& name, const std::string& prometheus_url) {
  return "---\napiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata: {name: " + name +
         ", namespace: test}\nspec:\n  provider: {type: prometheus, address: " + prometheus_url +
         "}\n  query: sum(rate(errors{route=\"{{ route }}\"}[{{ interval }}]))\n";
}

struct controller_run {
  std::string dir;
  std::unique_ptr<child_process> process;
  std::uint16_t port = 0;
};

void write_whole(const std::string& path, const std::string& text) {
  write_file(path + ".tmp", text);
  std::filesystem::rename(path + ".tmp", path);
}

// Starts the controller on documents whose canaries are all at revision "1" (first sight: the baseline),
// waits for every one's initialization, then moves them to revision "2": the runs start.
controller_run start_runs(const std::function<std::string(const std::string& revision)>& docs,
                          const std::vector<std::string>& names) {
  controller_run c;
  c.dir = make_temp_dir();
  std::filesystem::create_directories(c.dir + "/canaries");
  write_whole(c.dir + "/canaries/all.yaml", docs("1"));
  c.process = std::make_unique<child_process>(
      control_binary(), std::vector<std::string>{"--canaries", c.dir + "/canaries", "--listen", "127.0.0.1:0",
                                                 "--state", c.dir + "/state.json"});
  auto line = c.process->wait_for("vane-control listening on");
  if (!line) {
    ADD_FAILURE() << c.process->output();
    return c;
  }
  c.port = port_of_line(*line);
  for (const auto& n : names)
    if (!c.process->wait_for("Initialization done! " + n + ".test")) ADD_FAILURE() << c.process->output();
  write_whole(c.dir + "/canaries/all.yaml", docs("2"));
  return c;
}

std::string phase_of(const controller_run& c, const std::string& name) {
  auto r = fetch(c.port, "GET", "/canaries/" + name);
  if (r.status != 200) return "";
  auto v = json::parse(r.body);
  return std::string(v.at("phase").as_string());
}

// Waits for the run to end; its phase then ("" when it did not end within the deadline).
std::string outcome(controller_run& c, const std::string& name, std::chrono::seconds deadline = 180s) {
  std::string phase;
  eventually(
      [&] {
        phase = phase_of(c, name);
        return phase == "Succeeded" || phase == "Failed";
      },
      deadline);
  return phase == "Succeeded" || phase == "Failed" ? phase : "";
}

std::atomic<std::size_t> shapes_tried{0};

}  // namespace

// Prometheus answers odd shapes between well-formed ones: the good canary is promoted, the bad one rolled back.
TEST(ControlFaults, APrometheusAnsweringOddShapesStillDecidesEveryRun) {
  fake_prometheus good_prom(true, "0"), bad_prom(true, "5");
  fake_proxy good_proxy(false, 0), bad_proxy(false, 0);
  const std::size_t iterations = good_prom.shapes.size() + 2;
  auto docs = [&](const std::string& revision) {
    auto analysis = [&](const std::string& tmpl, std::size_t threshold) {
      return "    threshold: " + std::to_string(threshold) + "\n    iterations: " + std::to_string(iterations) +
             "\n    metrics:\n      - name: errors\n        templateRef: {name: " + tmpl +
             ", namespace: test}\n        thresholdRange: {max: 1}\n        interval: 1m\n";
    };
    // The good run tolerates the failed checks its data gives (no values, NaN, +Inf are data, as Flagger's).
    return canary_doc("good", revision, good_proxy.server.url(), analysis("good-errors", 100)) +
           template_doc("good-errors", good_prom.server.url()) + "---\n" +
           canary_doc("bad", revision, bad_proxy.server.url(), analysis("bad-errors", 3)) +
           template_doc("bad-errors", bad_prom.server.url());
  };
  auto ctl = start_runs(docs, {"good", "bad"});
  ASSERT_NE(ctl.port, 0);
  EXPECT_EQ(outcome(ctl, "bad"), "Failed") << ctl.process->output();
  EXPECT_EQ(outcome(ctl, "good"), "Succeeded") << ctl.process->output();
  EXPECT_EQ(good_prom.shapes.served(), good_prom.shapes.size());  // every shape was tried during the good run
  EXPECT_GE(bad_prom.shapes.served(), 1u);
  // The API shows the phase before its event's log line is written and read from the pipe.
  ctl.process->wait_for("Promotion completed! Scaling down good.test");
  std::string out = ctl.process->output();
  EXPECT_NE(out.find("Rolling back bad.test failed checks threshold reached 3"), std::string::npos) << out;
  EXPECT_NE(out.find("Promotion completed! Scaling down good.test"), std::string::npos) << out;
  EXPECT_NE(out.find("unreadable: prometheus answered 502"), std::string::npos) << out;
  EXPECT_EQ(out.find("ended by an exception"), std::string::npos) << out;
  shapes_tried += good_prom.shapes.size();
  std::printf("ControlFaults: %zu Prometheus answer shapes tried\n", good_prom.shapes.size());
}

// Proxies answer odd shapes to /stats/latency, /clusters and traffic PUTs: the builtin metrics still decide.
TEST(ControlFaults, ProxiesAnsweringOddShapesStillDecideEveryRun) {
  fake_proxy good_proxy(true, 0), bad_proxy(true, 50);
  const std::size_t iterations = good_proxy.stats.size() + 2;
  auto docs = [&](const std::string& revision) {
    auto analysis = [&](std::size_t threshold) {
      return "    threshold: " + std::to_string(threshold) + "\n    iterations: " + std::to_string(iterations) +
             "\n    metrics:\n      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 300ms}\n"
             "      - {name: request-duration, thresholdRange: {max: 500}, interval: 300ms}\n";
    };
    return canary_doc("good", revision, good_proxy.server.url(), analysis(2)) + "---\n" +
           canary_doc("bad", revision, bad_proxy.server.url(), analysis(2));
  };
  auto ctl = start_runs(docs, {"good", "bad"});
  ASSERT_NE(ctl.port, 0);
  EXPECT_EQ(outcome(ctl, "bad"), "Failed") << ctl.process->output();
  EXPECT_EQ(outcome(ctl, "good"), "Succeeded") << ctl.process->output();
  EXPECT_EQ(good_proxy.stats.served(), good_proxy.stats.size());
  EXPECT_EQ(good_proxy.clusters.served(), good_proxy.clusters.size());  // the promotion waited through all of them
  EXPECT_EQ(good_proxy.traffic.served(), good_proxy.traffic.size());
  // The API shows the phase before its event's log line is written and read from the pipe.
  ctl.process->wait_for("Promotion completed! Scaling down good.test");
  std::string out = ctl.process->output();
  EXPECT_NE(out.find("Halt bad.test advancement success rate 50.00% < 99%"), std::string::npos) << out;
  EXPECT_NE(out.find("Promotion completed! Scaling down good.test"), std::string::npos) << out;
  EXPECT_EQ(out.find("ended by an exception"), std::string::npos) << out;
  shapes_tried += good_proxy.stats.size() + good_proxy.clusters.size() + good_proxy.traffic.size();
  std::printf("ControlFaults: %zu /stats/latency, %zu /clusters, %zu traffic PUT answer shapes tried\n",
              good_proxy.stats.size(), good_proxy.clusters.size(), good_proxy.traffic.size());
}

// An unreadable answer is a reason: in the log once (not every tick), in the API and in `status`, and
// a failed check (as Flagger counts a query error); when answers are readable again the run goes on
// and the reason is gone.
TEST(ControlFaults, AnUnreadableAnswerIsAReasonLoggedOnceAndShownByStatus) {
  fake_prometheus prom(false, "0");
  prom.readable = false;
  fake_proxy proxy(false, 0);
  auto docs = [&](const std::string& revision) {
    return canary_doc(
               "app", revision, proxy.server.url(),
               "    threshold: 1000\n    iterations: 2\n    metrics:\n      - name: errors\n        templateRef: "
               "{name: errors, namespace: test}\n        thresholdRange: {max: 1}\n") +
           template_doc("errors", prom.server.url());
  };
  auto ctl = start_runs(docs, {"app"});
  ASSERT_NE(ctl.port, 0);
  ASSERT_TRUE(eventually([&] { return prom.server.requests() >= 6; }, 60s));
  auto status = fetch_json(ctl.port, "/canaries/app").as_object();
  EXPECT_EQ(status.at("phase").as_string(), "Progressing");
  EXPECT_GE(status.at("failed_checks").as_int64(), 1);  // no number: a failed check
  std::string reason(status.at("reason").as_string());
  EXPECT_NE(reason.find("not JSON"), std::string::npos) << reason;
  EXPECT_NE(reason.find("<!DOCTYPE html>"), std::string::npos) << reason;
  auto [code, table] = run(control_binary(), {"status", "--server", "http://127.0.0.1:" + std::to_string(ctl.port)});
  EXPECT_EQ(code, 0);
  EXPECT_NE(table.find("not JSON"), std::string::npos) << table;
  std::string out = ctl.process->output();
  std::size_t first = out.find("app.test: errors: prometheus: not JSON");
  ASSERT_NE(first, std::string::npos) << out;
  EXPECT_EQ(out.find("app.test: errors: prometheus: not JSON", first + 1), std::string::npos) << out;  // once
  prom.readable = true;
  EXPECT_EQ(outcome(ctl, "app"), "Succeeded") << ctl.process->output();
  EXPECT_TRUE(ctl.process->wait_for("app.test: readings are back"));
  EXPECT_EQ(fetch_json(ctl.port, "/canaries/app").at("reason").as_string(), "");
}

// A tick that does not end (a webhook holding its answer) shows on the watchdog: the status column and
// vane_canary_last_tick_timestamp_seconds; the run goes on once the answer comes.
TEST(ControlFaults, ARunThatDoesNotTickShowsOnTheWatchdog) {
  std::atomic<bool> hold{true};
  scripted_http_server hook([&](const scripted_request&) {
    auto r = http_reply(200, "{}");
    if (hold) r.delay = 5s;  // below the webhook's 10 s timeout: the tick waits for it
    return r;
  });
  fake_proxy proxy(false, 0);
  auto docs = [&](const std::string& revision) {
    return canary_doc("app", revision, proxy.server.url(),
                      "    threshold: 2\n    iterations: 2\n    webhooks:\n      - {name: load, type: rollout, url: " +
                          hook.url() + "/}\n");
  };
  auto ctl = start_runs(docs, {"app"});
  ASSERT_NE(ctl.port, 0);
  ASSERT_TRUE(eventually([&] { return hook.requests() >= 1; }, 60s));
  ASSERT_TRUE(eventually([&] { return fetch_json(ctl.port, "/canaries/app").at("stalled").as_bool(); }, 30s))
      << json::serialize(fetch_json(ctl.port, "/canaries/app"));
  auto [code, table] = run(control_binary(), {"status", "--server", "http://127.0.0.1:" + std::to_string(ctl.port)});
  EXPECT_NE(table.find("stalled"), std::string::npos) << table;
  auto metrics = fetch(ctl.port, "GET", "/metrics").body;
  EXPECT_NE(metrics.find("# TYPE vane_canary_last_tick_timestamp_seconds gauge"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(vane_canary_last_tick_timestamp_seconds{name="app",namespace="test"} )"), std::string::npos)
      << metrics;
  hold = false;
  EXPECT_EQ(outcome(ctl, "app"), "Succeeded") << ctl.process->output();
  EXPECT_FALSE(fetch_json(ctl.port, "/canaries/app").at("stalled").as_bool());
}
