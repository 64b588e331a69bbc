// The metrics building blocks and the proxy's stats store: Prometheus text
// rendering, escaping, the coarse buckets derived from the fine histogram,
// merging over workers.
#include "common/metrics.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <thread>

#include "proxy/stats.hpp"

using namespace vane;
using namespace vane::metrics;

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  std::string out;
  prometheus_writer w(out);
  w.family("m_total", "counter", "a \\ help\nline");
  label l[] = {{"route", "a\"b\\c\nd"}};
  w.sample("m_total", l, std::uint64_t{3});
  EXPECT_EQ(out,
            "# HELP m_total a \\\\ help\\nline\n# TYPE m_total counter\n"
            "m_total{route=\"a\\\"b\\\\c\\nd\"} 3\n");
}

TEST(Metrics, NumbersAsPrometheusWritesThem) {
  auto num = [](double v) {
    std::string s;
    append_number(s, v);
    return s;
  };
  EXPECT_EQ(num(0), "0");
  EXPECT_EQ(num(42), "42");
  EXPECT_EQ(num(0.25), "0.25");
  EXPECT_EQ(num(1.5e-6), "1.5e-06");
  EXPECT_EQ(num(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(num(std::nan("")), "NaN");
}

TEST(Metrics, CoarseBucketsAreCumulativeAndAgreeWithTheFineHistogram) {
  log_linear_histogram h;
  // 10 values of 100 µs, 5 of 2.5 ms, 3 of 40 ms, 2 of 45 s (above the last bound).
  for (int i = 0; i < 10; ++i) h.record(100);
  for (int i = 0; i < 5; ++i) h.record(2500);
  for (int i = 0; i < 3; ++i) h.record(40000);
  for (int i = 0; i < 2; ++i) h.record(45'000'000);
  std::string out;
  prometheus_writer w(out);
  label l[] = {{"route", "r"}};
  w.histogram_seconds("d_seconds", l, h, duration_bounds());
  auto line = [&](const std::string& le) {
    auto key = "d_seconds_bucket{route=\"r\",le=\"" + le + "\"} ";
    auto at = out.find(key);
    EXPECT_NE(at, std::string::npos) << key;
    return std::stoull(out.substr(at + key.size()));
  };
  EXPECT_EQ(line("0.0005"), 10u);
  EXPECT_EQ(line("0.002"), 10u);
  EXPECT_EQ(line("0.003"), 15u);
  EXPECT_EQ(line("0.03"), 15u);
  EXPECT_EQ(line("0.05"), 18u);
  EXPECT_EQ(line("30"), 18u);
  EXPECT_EQ(line("+Inf"), 20u);
  EXPECT_NE(out.find("d_seconds_count{route=\"r\"} 20\n"), std::string::npos);
  // Sum in seconds: 10*100µs + 5*2.5ms + 3*40ms + 2*45s = 90.1335 s
  EXPECT_NE(out.find("d_seconds_sum{route=\"r\"} 90.1335\n"), std::string::npos) << out;
  // Bounds are exact in µs: a value right at 500 µs is in the bucket [500, 504), above le=0.0005.
  EXPECT_EQ(log_linear_histogram::lower(log_linear_histogram::index_of(500)), 500u);
}

TEST(Metrics, ConcurrentHistogramSnapshotEqualsAPlainOne) {
  concurrent_histogram c;
  log_linear_histogram plain;
  for (std::uint64_t v = 1; v < 200000; v = v * 3 / 2 + 1) {
    c.record(v);
    plain.record(v);
  }
  log_linear_histogram snap;
  c.add_to(snap);
  EXPECT_EQ(snap.count(), plain.count());
  EXPECT_EQ(snap.sum(), plain.sum());
  for (std::size_t i = 0; i < log_linear_histogram::bucket_count; ++i) ASSERT_EQ(snap.bucket(i), plain.bucket(i));
}

TEST(Metrics, StatusOutsideTheRangeCountsAs502) {
  status_counters s;
  s.add(200);
  s.add(99);
  s.add(600);
  EXPECT_EQ(s.value(200), 1u);
  EXPECT_EQ(s.value(502), 2u);
}

TEST(StatsStore, MergesWorkersAndKeepsPointersStable) {
  proxy::stats_store store(3);
  auto* a0 = store.route_cluster(0, "app", "primary");
  auto* a1 = store.route_cluster(1, "app", "primary");
  auto* b2 = store.route_cluster(2, "app", "canary");
  EXPECT_EQ(store.route_cluster(0, "app", "primary"), a0);  // the same slot, registered again
  EXPECT_NE(a0, a1);
  // Each worker writes its own, from its own thread.
  std::thread t0([&] {
    for (int i = 0; i < 1000; ++i) {
      a0->requests.get().add(200);
      a0->upstream_time.get().record(1000);
    }
  });
  std::thread t1([&] {
    for (int i = 0; i < 500; ++i) a1->requests.get().add(i % 5 == 0 ? 503 : 200);
  });
  std::thread t2([&] { b2->requests.get().add(500); });
  t0.join();
  t1.join();
  t2.join();
  std::string out;
  store.render_prometheus(out);
  EXPECT_NE(out.find("vane_requests_total{route=\"app\",cluster=\"primary\",code=\"200\"} 1400\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("vane_requests_total{route=\"app\",cluster=\"primary\",code=\"503\"} 100\n"), std::string::npos);
  EXPECT_NE(out.find("vane_requests_total{route=\"app\",cluster=\"canary\",code=\"500\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("vane_upstream_duration_seconds_count{route=\"app\",cluster=\"primary\"} 1000\n"),
            std::string::npos);
  // A family is written once, its samples together.
  EXPECT_EQ(out.find("# TYPE vane_requests_total"), out.rfind("# TYPE vane_requests_total"));

  auto routes = store.latency_json();
  ASSERT_EQ(routes.size(), 2u);
  const auto& primary = routes[1].as_object();  // ordered by route, then cluster
  EXPECT_EQ(primary.at("cluster").as_string(), "primary");
  const auto& up = primary.at("upstream").as_object();
  EXPECT_EQ(up.at("count").as_uint64(), 1000u);
  ASSERT_EQ(up.at("buckets").as_array().size(), 1u);
  const auto& bucket = up.at("buckets").as_array()[0].as_array();
  EXPECT_LE(bucket[0].as_uint64(), 1000u);
  EXPECT_GT(bucket[1].as_uint64(), 1000u);
  EXPECT_EQ(primary.at("downstream").at("codes").at("503").as_uint64(), 100u);
}
