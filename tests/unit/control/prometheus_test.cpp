// The Prometheus provider's answers: a value, no values (Flagger's failed check), or inconclusive with why.
#include "control/prometheus.hpp"

#include <gtest/gtest.h>

using namespace vane::control;

namespace {

std::string vector_of(const std::string& value) {
  return R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,)" + value +
         "]}]}}";
}

}  // namespace

TEST(ControlPrometheus, WellFormedAnswersAreValues) {
  auto r = read_prometheus_answer(200, vector_of(R"("0.25")"));
  EXPECT_EQ(r.value, 0.25);
  EXPECT_FALSE(r.inconclusive);
  EXPECT_EQ(read_prometheus_answer(200, vector_of("3")).value, 3);  // a number where a string is usual
  EXPECT_EQ(
      read_prometheus_answer(200, R"({"status":"success","data":{"resultType":"scalar","result":[1,"7"]}})").value, 7);
  EXPECT_EQ(read_prometheus_answer(200, vector_of(R"("+Inf")")).value, INFINITY);
  EXPECT_EQ(read_prometheus_answer(200, vector_of(R"("1e400")")).value, INFINITY);
}

TEST(ControlPrometheus, NoValuesIsFlaggersFailedCheckNotInconclusive) {
  for (const std::string& body :
       {std::string(R"({"status":"success","data":{"resultType":"vector","result":[]}})"), vector_of(R"("NaN")")}) {
    auto r = read_prometheus_answer(200, body);
    EXPECT_FALSE(r.value) << body;
    EXPECT_FALSE(r.inconclusive) << body;
  }
}

TEST(ControlPrometheus, OddAnswersAreInconclusiveWithWhy) {
  const std::pair<int, std::string> odd[] = {
      {200, "<html><body>502 Bad Gateway</body></html>"},
      {502, "<html><body>502 Bad Gateway</body></html>"},
      {503, ""},
      {302, ""},
      {400, R"({"status":"error","errorType":"bad_data","error":"parse error at char 5"})"},
      {200, ""},
      {200, R"({"status":"success","data":{"resu)"},
      {200, "null"},
      {200, "[]"},
      {200, R"({"status":"error","error":"query timed out"})"},
      {200, R"({"status":1})"},
      {200, R"({"status":"success"})"},
      {200, R"({"status":"success","data":null})"},
      {200, R"({"status":"success","data":{"resultType":"vector"}})"},
      {200, R"({"status":"success","data":{"resultType":"vector","result":null}})"},
      {200, R"({"status":"success","data":{"resultType":"vector","result":{}}})"},
      {200, R"({"status":"success","data":{"resultType":"vector","result":[1,2,3]}})"},
      {200, R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}})"},
      {200, R"({"status":"success","data":{"resultType":"vector","result":[{"value":[1]}]}})"},
      {200, R"({"status":"success","data":{"resultType":"vector","result":[{"value":"1"}]}})"},
      {200, R"({"status":"success","data":{"resultType":"matrix","result":[{"values":[[1,"1"]]}]}})"},
      {200, R"({"status":"success","data":{"resultType":"string","result":[1,"x"]}})"},
      {200, vector_of(R"("abc")")},
      {200, vector_of("null")},
      {200, vector_of("true")},
      {200, vector_of(R"({"v":1})")},
      {200, vector_of(R"("")")},
  };
  for (const auto& [status, body] : odd) {
    auto r = read_prometheus_answer(status, body);
    EXPECT_TRUE(r.inconclusive) << status << " " << body;
    EXPECT_FALSE(r.value) << status << " " << body;
    EXPECT_FALSE(r.why.empty()) << status << " " << body;
  }
  EXPECT_EQ(read_prometheus_answer(400, R"({"status":"error","error":"parse error"})").why,
            "prometheus answered 400: parse error");
  EXPECT_EQ(read_prometheus_answer(200, vector_of("null")).why, "the value is null, not a number");
  // One series per pod (a query without its sum()): not judged by one of them.
  const auto two = read_prometheus_answer(
      200, R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a"},"value":[1,"100"]},)"
           R"({"metric":{"pod":"b"},"value":[1,"12"]}]}})");
  EXPECT_TRUE(two.inconclusive);
  EXPECT_FALSE(two.value);
  EXPECT_EQ(two.why, "prometheus: 2 series; the query must return one number (sum by nothing)");
}

TEST(ControlPrometheus, TemplatesGetFlaggersVariables) {
  canary_spec c;
  c.name = "podinfo";
  c.ns = "test";
  c.target = "podinfo";
  c.route = "app";
  c.primary = "podinfo-primary";
  c.canary = "podinfo-canary";
  metric_spec m;
  m.interval = std::chrono::seconds(30);
  m.template_variables["region"] = "eu";
  auto vars = query_variables(c, m);
  EXPECT_EQ(
      render_template(
          "rate(x{route=\"{{ route }}\",c=\"{{canary}}\",r=\"{{ variables.region }}\"}[{{ interval }}]) {{ unknown }}",
          vars),
      "rate(x{route=\"app\",c=\"podinfo-canary\",r=\"eu\"}[30s]) {{ unknown }}");
}
