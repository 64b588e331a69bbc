// vane-control's builtin metrics from /stats/latency snapshots: windows,
// counter resets, first sight, success rate and p99.
#include "control/builtin.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

using namespace vane::control;
namespace json = boost::json;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// A /stats/latency answer for route "app": the canary's upstream codes, all
// latencies in the bucket of `us`.
json::object stats(double start, std::uint64_t ok, std::uint64_t errors, std::uint64_t us = 1000) {
  json::object codes;
  if (ok) codes["200"] = ok;
  if (errors) codes["503"] = errors;
  auto i = vane::log_linear_histogram::index_of(us);
  json::array buckets{
      json::array{vane::log_linear_histogram::lower(i), vane::log_linear_histogram::upper(i), ok + errors}};
  return {{"process_start_time", start},
          {"routes", json::array{json::object{{"route", "app"},
                                              {"cluster", "canary"},
                                              {"upstream", json::object{{"count", ok + errors},
                                                                        {"sum", (ok + errors) * us},
                                                                        {"codes", codes},
                                                                        {"buckets", buckets}}}},
                                 json::object{{"route", "other"}, {"cluster", "canary"}}}}};
}

const std::string key = series_key("canary", "upstream");

}  // namespace

TEST(BuiltinMetrics, WindowsAreDeltasAndResetsAreHandled) {
  auto t0 = steady::now();
  auto s0 = snapshot_from_stats(stats(100, 90, 10), "app", t0);
  ASSERT_EQ(s0.by_key.count(key), 1u);
  EXPECT_EQ(s0.by_key[key].total, 100u);
  EXPECT_EQ(s0.by_key[key].errors, 10u);
  auto s1 = snapshot_from_stats(stats(100, 189, 11), "app", t0 + 10s);
  window w = delta(&s0, s1, key);
  EXPECT_EQ(w.total, 100u);
  EXPECT_EQ(w.errors, 1u);
  EXPECT_EQ(w.latency.count(), 100u);
  EXPECT_EQ(success_rate(w), 99.0);
  // The proxy restarted: its counts start again, the new values are the window.
  auto restarted = snapshot_from_stats(stats(200, 5, 5), "app", t0 + 20s);
  w = delta(&s1, restarted, key);
  EXPECT_EQ(w.total, 10u);
  EXPECT_EQ(success_rate(w), 50.0);
  // A count that went down with the same start time is a reset too.
  auto lower = snapshot_from_stats(stats(100, 3, 0), "app", t0 + 20s);
  EXPECT_EQ(delta(&s1, lower, key).total, 3u);
  // No traffic: no value (not 100%).
  EXPECT_EQ(success_rate(delta(&s1, s1, key)), std::nullopt);
}

TEST(BuiltinMetrics, FirstSightIsInconclusiveAndWindowsSpanTheirInterval) {
  proxy_history h;
  auto t0 = steady::now();
  EXPECT_EQ(h.over(1min, key), std::nullopt);
  h.add(snapshot_from_stats(stats(1, 10, 0), "app", t0), 5min);
  ASSERT_TRUE(h.over(1min, key));
  EXPECT_TRUE(h.over(1min, key)->inconclusive);
  h.add(snapshot_from_stats(stats(1, 20, 0), "app", t0 + 30s), 5min);
  h.add(snapshot_from_stats(stats(1, 40, 0), "app", t0 + 60s), 5min);
  h.add(snapshot_from_stats(stats(1, 80, 0), "app", t0 + 90s), 5min);
  // A 1 minute window at t0+90s starts at the newest snapshot at least 1m old (t0+30s).
  EXPECT_EQ(h.over(1min, key)->total, 60u);
  EXPECT_FALSE(h.over(1min, key)->inconclusive);
  // A window longer than the history starts at the oldest snapshot.
  EXPECT_EQ(h.over(10min, key)->total, 70u);
}

TEST(BuiltinMetrics, P99IsInterpolatedInItsBucket) {
  window w;
  for (int i = 0; i < 98; ++i) w.latency.record(10'000);  // 10 ms
  for (int i = 0; i < 2; ++i) w.latency.record(500'000);  // 500 ms
  w.total = 100;
  auto p99 = p99_ms(w);
  ASSERT_TRUE(p99);
  EXPECT_GE(*p99, 496.0);  // in the 500 ms bucket (width 1/64)
  EXPECT_LE(*p99, 508.0);
  EXPECT_EQ(p99_ms(window{}), std::nullopt);
}

// gRPC: the statuses of attempts answered with a non-5xx HTTP status ("grpc") count as errors when
// they are in the Canary's failure set; a malformed "grpc" is a reason, not a throw.
TEST(BuiltinMetrics, GrpcFailureStatusesCountAsErrors) {
  auto s = stats(1, 100, 10);
  auto& up = s["routes"].as_array()[0].as_object()["upstream"].as_object();
  up["grpc"] = json::object{{"0", 60}, {"13", 30}, {"5", 10}};  // OK, INTERNAL, NOT_FOUND
  auto snap = read_snapshot(s, "app", steady::now());
  ASSERT_TRUE(snap) << snap.why;
  EXPECT_EQ(snap.value->by_key.at(key).total, 110u);
  EXPECT_EQ(snap.value->by_key.at(key).errors, 10u + 30u);  // 5xx + INTERNAL (NOT_FOUND is not in the default set)
  auto only_not_found = read_snapshot(s, "app", steady::now(), 1U << 5);
  ASSERT_TRUE(only_not_found);
  EXPECT_EQ(only_not_found.value->by_key.at(key).errors, 10u + 10u);
  auto none = read_snapshot(s, "app", steady::now(), 0);
  EXPECT_EQ(none.value->by_key.at(key).errors, 10u);
  up["grpc"] = json::object{{"13", "many"}};
  auto bad = read_snapshot(s, "app", steady::now());
  EXPECT_FALSE(bad);
  EXPECT_NE(bad.why.find("grpc status 13"), std::string::npos) << bad.why;
  // More failures than attempts: a read between a call's status and its attempt being counted. Every
  // attempt failed (it was a reason, so a canary failing every call was inconclusive instead of failed).
  up["grpc"] = json::object{{"13", 500}};
  auto more = read_snapshot(s, "app", steady::now());
  ASSERT_TRUE(more) << more.why;
  EXPECT_EQ(more.value->by_key.at(key).errors, 110u);
  window w;
  w.total = 3;
  w.errors = 5;  // (never a wrapped-around success rate)
  EXPECT_EQ(success_rate(w), 0.0);
}
