// Google Benchmark cases for the per-request routing decisions of issue 4:
// A/B rules with 0, 3 and 10 exact/prefix header conditions, 3 RE2 rules,
// and the sticky pick (hash + range lookup). The request is a typical
// browser head of about 600 bytes; no rule holds, so every rule is evaluated.
#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

#include "filters/rules/rules.hpp"
#include "filters/split/split.hpp"

namespace {

struct bench_request final : vane::request_view {
  std::vector<std::pair<std::string, std::string>> fields{
      {"host", "shop.example.com"},
      {"user-agent",
       "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"},
      {"accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"},
      {"accept-language", "en-GB,en;q=0.9"},
      {"accept-encoding", "gzip, deflate, br"},
      {"cookie", "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; consent=yes"},
      {"x-request-id", "5d41402abc4b2a76b9719d911017c592"},
      {"x-user-id", "user-123456"},
      {"referer", "https://shop.example.com/catalog/shoes?page=2"},
  };
  std::optional<std::string_view> header(std::string_view name) const override {
    for (const auto& [k, v] : fields)
      if (k == name) return std::string_view(v);
    return std::nullopt;
  }
  std::vector<std::string_view> headers(std::string_view name) const override {
    std::vector<std::string_view> out;
    for (const auto& [k, v] : fields)
      if (k == name) out.emplace_back(v);
    return out;
  }
  std::string_view target() const override { return "/catalog/shoes?page=2"; }
  std::string_view source_ip() const override { return "10.1.2.3"; }
};

std::vector<vane::match_alternative> header_rules(int n, vane::string_match_kind kind, const std::string& value) {
  std::vector<vane::match_alternative> rules;
  for (int i = 0; i < n; ++i) {
    std::string error;
    auto m = vane::string_matcher::make(kind, value + std::to_string(i), error);
    rules.push_back(
        {{vane::match_condition{vane::match_source::header, "x-canary-" + std::to_string(i % 3 == 0 ? 0 : i), *m}}});
  }
  return rules;
}

void BM_RulesExactPrefix(benchmark::State& state) {
  bench_request req;
  auto n = static_cast<int>(state.range(0));
  // Half exact, half prefix, on headers the request has (so values are compared) and has not.
  auto rules = header_rules(n / 2, vane::string_match_kind::exact, "insider");
  auto more = header_rules(n - n / 2, vane::string_match_kind::prefix, "beta");
  rules.insert(rules.end(), more.begin(), more.end());
  for (auto& r : rules) r.all[0].name = r.all[0].name.back() == '0' ? "user-agent" : r.all[0].name;
  for (auto _ : state) benchmark::DoNotOptimize(vane::rule_holds(rules, req));
}
BENCHMARK(BM_RulesExactPrefix)->Arg(0)->Arg(3)->Arg(10);

void BM_Rules3Regex(benchmark::State& state) {
  bench_request req;
  std::vector<vane::match_alternative> rules;
  for (const char* re : {".*Firefox.*", "^(.*?;)?(canary=always)(;.*)?$", "user-9[0-9]+"}) {
    std::string error;
    const char* header = re[1] == '(' ? "cookie" : (re[0] == 'u' ? "x-user-id" : "user-agent");
    rules.push_back({{vane::match_condition{vane::match_source::header, header,
                                            *vane::string_matcher::make(vane::string_match_kind::regex, re, error)}}});
  }
  for (auto _ : state) benchmark::DoNotOptimize(vane::rule_holds(rules, req));
}
BENCHMARK(BM_Rules3Regex);

void BM_CookieRule(benchmark::State& state) {
  bench_request req;
  std::string error;
  std::vector<vane::match_alternative> rules{
      {{vane::match_condition{vane::match_source::cookie, "canary",
                              *vane::string_matcher::make(vane::string_match_kind::exact, "always", error)}}}};
  for (auto _ : state) benchmark::DoNotOptimize(vane::rule_holds(rules, req));
}
BENCHMARK(BM_CookieRule);

void BM_StickyPick(benchmark::State& state) {
  std::vector<std::uint32_t> weights{90, 10};
  std::string key = "user-123456";
  for (auto _ : state) benchmark::DoNotOptimize(vane::pick_by_point(weights, vane::sticky_point(key)));
}
BENCHMARK(BM_StickyPick);

}  // namespace
