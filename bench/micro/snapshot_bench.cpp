// Google Benchmark cases for the traffic-policy snapshots: what a request
// pays to pick up the current snapshot, and what the control thread pays to
// build the next one from a PUT. (The head parse: request_path_bench.cpp.)
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "proxy/config_load.hpp"
#include "proxy/route_table.hpp"
#include "proxy/traffic.hpp"

namespace {

vane::proxy::proxy_config config_with_routes(int routes) {
  std::string text = "listeners:\n  - name: http\n    address: 127.0.0.1:8080\n    routes:\n";
  for (int i = 0; i < routes; ++i)
    text += "      - name: r" + std::to_string(i) + "\n        match: {path_prefix: /r" + std::to_string(i) +
            "}\n        split: [{cluster: p" + std::to_string(i) + ", weight: 90}, {cluster: c" + std::to_string(i) +
            ", weight: 10}]\n";
  text += "clusters:\n";
  for (int i = 0; i < routes; ++i)
    text += "  - {name: p" + std::to_string(i) + ", endpoints: [127.0.0.1:9898]}\n  - {name: c" + std::to_string(i) +
            ", endpoints: [127.0.0.1:9899]}\n";
  std::vector<vane::config_error> errors;
  auto c = vane::proxy::parse_proxy_config(text, "bench.yaml", errors);
  if (!c) std::abort();
  return *c;
}

// The request path: take the worker's current snapshot for the request's life, then let it go.
void BM_SnapshotAcquire(benchmark::State& state) {
  auto config = config_with_routes(1);
  std::string error;
  auto table = vane::proxy::build_route_table(config, 1, vane::proxy::table_inputs{}, error);
  for (auto _ : state) {
    std::shared_ptr<const vane::proxy::route_table> held = table;
    benchmark::DoNotOptimize(held.get());
  }
}
BENCHMARK(BM_SnapshotAcquire);

// The control thread on PUT /routes/r0/traffic: validate the body, apply the
// overrides to the file's config, build the next immutable snapshot.
void BM_TrafficPutSnapshot(benchmark::State& state) {
  auto config = config_with_routes(static_cast<int>(state.range(0)));
  std::string error;
  auto previous = vane::proxy::build_route_table(config, 1, vane::proxy::table_inputs{}, error);
  const std::string body = R"({"split":[{"cluster":"p0","weight":70},{"cluster":"c0","weight":30}]})";
  vane::proxy::route_overrides none;
  for (auto _ : state) {
    auto update = vane::proxy::parse_traffic_update(body, config, none);
    vane::proxy::overrides_map overrides{{"r0", *update.overrides}};
    std::vector<std::string> dropped;
    auto effective = vane::proxy::apply_overrides(config, overrides, dropped);
    vane::proxy::table_inputs in;
    in.previous = previous.get();
    auto next = vane::proxy::build_route_table(effective, 2, in, error);
    benchmark::DoNotOptimize(next.get());
  }
}
BENCHMARK(BM_TrafficPutSnapshot)->Arg(1)->Arg(100)->Unit(benchmark::kMicrosecond);

}  // namespace
