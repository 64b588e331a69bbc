// Google Benchmark cases for the per-request decisions (pure functions).
//   build/bench/vane_micro_bench
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "common/histogram.hpp"
#include "filters/route_match/route_match.hpp"
#include "filters/split/split.hpp"

namespace {

void BM_PickSmooth(benchmark::State& state) {
  std::vector<std::uint32_t> weights{90, 10};
  std::vector<std::int64_t> current(2, 0);
  for (auto _ : state) benchmark::DoNotOptimize(vane::pick_smooth(weights, current));
}
BENCHMARK(BM_PickSmooth);

void BM_PickByPoint(benchmark::State& state) {
  std::vector<std::uint32_t> weights{90, 10};
  std::uint32_t point = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(vane::pick_by_point(weights, point));
    point = (point + 7919) % vane::split_points;
  }
}
BENCHMARK(BM_PickByPoint);

void BM_HostExact(benchmark::State& state) {
  vane::host_matcher m("podinfo.example.com");
  std::string host = "PodInfo.example.com:8080";
  for (auto _ : state) benchmark::DoNotOptimize(m.matches(host));
}
BENCHMARK(BM_HostExact);

void BM_HostSuffix(benchmark::State& state) {
  vane::host_matcher m("*.example.com");
  std::string host = "tenant-42.example.com";
  for (auto _ : state) benchmark::DoNotOptimize(m.matches(host));
}
BENCHMARK(BM_HostSuffix);

void BM_PathPrefix(benchmark::State& state) {
  auto m = vane::path_matcher::prefix("/api/");
  std::string path = "/api/v1/users/42";
  for (auto _ : state) benchmark::DoNotOptimize(m.matches(path));
}
BENCHMARK(BM_PathPrefix);

void BM_PathRegex(benchmark::State& state) {
  auto m = vane::path_matcher::regex("/api/v[0-9]+/users/[0-9]+");
  std::string path = "/api/v1/users/42";
  for (auto _ : state) benchmark::DoNotOptimize(m.matches(path));
}
BENCHMARK(BM_PathRegex);

}  // namespace

namespace {
// One latency recorded into the fine histogram (the per-request metrics cost).
void BM_HistogramRecord(benchmark::State& state) {
  static vane::log_linear_histogram h;
  std::uint64_t v = 1234;
  for (auto _ : state) {
    h.record(v);
    v = (v * 2862933555777941757ULL + 3037000493ULL) % 5'000'000;  // spread over 0..5 s in µs
  }
  benchmark::DoNotOptimize(h.count());
}
BENCHMARK(BM_HistogramRecord);
}  // namespace
