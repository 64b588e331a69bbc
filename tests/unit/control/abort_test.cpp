// vane's fast abort samples alone: the canary's errors since the previous
// sample, summed over proxies; a proxy seen first or answering badly adds nothing.
#include "control/abort.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

using namespace vane::control;
namespace json = boost::json;

namespace {

// A /stats/latency answer for route "app" with the canary's upstream codes.
parsed<json::object> stats(std::uint64_t ok, std::uint64_t errors) {
  json::object codes;
  if (ok) codes["200"] = ok;
  if (errors) codes["503"] = errors;
  json::object answer{
      {"process_start_time", 1.0},
      {"routes",
       json::array{json::object{{"route", "app"},
                                {"cluster", "canary"},
                                {"upstream", json::object{{"count", ok + errors}, {"sum", 0}, {"codes", codes}}}}}}};
  return parsed<json::object>{std::move(answer), {}};
}

}  // namespace

TEST(AbortSample, ErrorsSinceTheLastSampleSummedOverProxies) {
  canary_spec spec;
  spec.route = "app";
  spec.canary = "canary";
  const std::vector<std::string> urls{"http://a", "http://b"};
  std::map<std::string, proxy_snapshot> last;
  const auto now = std::chrono::steady_clock::now();

  // First sight of both proxies: nothing to compare with yet.
  auto first = sample_abort(spec, urls, {stats(100, 0), stats(50, 5)}, last, now);
  EXPECT_EQ(first.canary.total, 0u);
  EXPECT_TRUE(first.problems.empty());
  EXPECT_EQ(last.size(), 2u);

  auto second = sample_abort(spec, urls, {stats(110, 10), stats(60, 5)}, last, now);
  EXPECT_EQ(second.canary.total, 30u);  // (10 + 10) from a, 10 from b
  EXPECT_EQ(second.canary.errors, 10u);

  // A proxy that answers badly: a problem named, its share missing, its last sample kept.
  auto third = sample_abort(spec, urls, {stats(120, 10), parsed<json::object>::fail("HTTP 500")}, last, now);
  EXPECT_EQ(third.canary.total, 10u);
  EXPECT_EQ(third.canary.errors, 0u);
  ASSERT_EQ(third.problems.size(), 1u);
  EXPECT_NE(third.problems[0].find("http://b"), std::string::npos);
  EXPECT_NE(third.problems[0].find("HTTP 500"), std::string::npos);
}
