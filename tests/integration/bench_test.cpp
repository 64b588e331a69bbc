// vane-bench through its binary: the schedule of the open loop (exact counts
// for a rate and a duration), the closed loop with a request budget, errors
// by kind (refused connections, statuses), the JSON, and `overhead` on a
// shipped config.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "tests/support/fixtures.hpp"

using namespace vane::test;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

json::object run_load(const std::vector<std::string>& args, int expected_exit) {
  auto dir = make_temp_dir();
  std::vector<std::string> all = {"load", "--quiet", "--json", dir + "/out.json"};
  all.insert(all.end(), args.begin(), args.end());
  auto [code, out] = run(bench_binary(), all);
  EXPECT_EQ(code, expected_exit) << out;
  return json::parse(read_text_file(dir + "/out.json")).as_object();
}

std::int64_t num(const json::object& o, std::string_view k) { return o.at(k).to_number<std::int64_t>(); }

}  // namespace

TEST(Bench, OpenLoopSendsExactlyTheScheduleAndMeasuresEveryAnswer) {
  auto up = start_demo("v1");
  // 300 req/s for 1 s: due times start + i/300 for i < 300, whatever the connections do.
  auto r =
      run_load({"--url", "http://" + up.address() + "/", "--rate", "300", "--duration", "1s", "--connections", "4"}, 0);
  EXPECT_EQ(num(r, "sent"), 300);
  EXPECT_EQ(num(r, "completed"), 300);
  EXPECT_EQ(r.at("mode").as_string(), "open-loop");
  std::int64_t in_histogram = 0;
  for (const auto& b : r.at("histogram_ns").as_array()) in_histogram += b.as_array()[2].to_number<std::int64_t>();
  EXPECT_EQ(in_histogram, 300);
  EXPECT_EQ(up.stats().at("requests").as_int64(), 300);
  const auto& lat = r.at("latency_us").as_object();
  EXPECT_LE(lat.at("p50").to_number<double>(), lat.at("p99").to_number<double>());
  EXPECT_LE(lat.at("p99").to_number<double>(), lat.at("max").to_number<double>());
}

TEST(Bench, ClosedLoopStopsAtTheRequestBudgetAndCountsStatuses) {
  auto up = start_demo("v1", {"--error-percent", "10", "--error-status", "503"});
  auto r = run_load({"--url", "http://" + up.address() + "/", "--rate", "0", "--requests", "500", "--duration", "60s",
                     "--connections", "8", "--threads", "2"},
                    1);  // exit 1: some requests failed
  EXPECT_EQ(num(r, "sent"), 500);
  EXPECT_EQ(num(r, "completed"), 500);
  EXPECT_EQ(num(r.at("errors").as_object(), "status_5xx"), 50);  // the demo fails exactly 10 of every 100
  EXPECT_EQ(num(r.at("errors").as_object(), "closed"), 0);
}

TEST(Bench, RefusedConnectionsAreCountedAsConnectErrors) {
  auto port = unused_port();
  auto r = run_load({"--url", "http://127.0.0.1:" + std::to_string(port) + "/", "--rate", "100", "--duration", "500ms",
                     "--connections", "2"},
                    1);
  EXPECT_EQ(num(r, "sent"), 50);
  EXPECT_EQ(num(r, "completed"), 0);
  EXPECT_EQ(num(r.at("errors").as_object(), "connect"), 50);
}

TEST(Bench, BadArgumentsAreRefusedWithUsage) {
  auto [code, out] = run(bench_binary(), {"load", "--url", "http://localhost:80/"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("an IP address"), std::string::npos) << out;
  std::tie(code, out) = run(bench_binary(), {"load", "--url", "http://127.0.0.1:80/", "--rate", "fast"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("usage:"), std::string::npos) << out;
}

TEST(Bench, OverheadRunsAShippedConfigAgainstTheBuiltInUpstream) {
  auto dir = make_temp_dir();
  auto [code, out] = run(
      bench_binary(), {"overhead", "--config", source_dir() + "/configs/split.yaml", "--proxy", proxy_binary(),
                       "--rates", "200,400", "--rounds", "2", "--duration", "500ms", "--json", dir + "/overhead.json"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("added p99"), std::string::npos) << out;
  auto r = json::parse(read_text_file(dir + "/overhead.json")).as_object();
  const auto& rows = r.at("rates").as_array();
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) {
    EXPECT_EQ(row.at("errors").to_number<std::int64_t>(), 0) << json::serialize(row);
    EXPECT_GT(row.at("proxied_p50_us").to_number<double>(), 0);
    EXPECT_GT(row.at("direct_p50_us").to_number<double>(), 0);
  }
}
