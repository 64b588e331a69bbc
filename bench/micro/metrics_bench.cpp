// Google Benchmark cases for the metrics: what one request costs to record,
// and what a scrape of 100 routes x 2 clusters costs to render.
#include <benchmark/benchmark.h>

#include <string>

#include "proxy/stats.hpp"

namespace {

// One proxied request as the worker records it: a downstream status and
// duration, an upstream status and duration.
void BM_RecordOneRequest(benchmark::State& state) {
  vane::proxy::stats_store store(1);
  auto* s = store.route_cluster(0, "app", "app-canary");
  std::uint64_t us = 137;
  for (auto _ : state) {
    s->upstream.get().add(200);
    s->upstream_time.get().record(us);
    s->requests.get().add(200);
    s->request_time.get().record(us + 40);
    us = (us * 7 + 13) % 200000;  // latencies spread over many buckets
  }
}
BENCHMARK(BM_RecordOneRequest);

// A scrape with 100 routes x 2 clusters, each seen by 2 workers.
void BM_Scrape100Routes(benchmark::State& state) {
  constexpr std::size_t workers = 2;
  vane::proxy::stats_store store(workers);
  for (int r = 0; r < 100; ++r) {
    for (const char* c : {"primary", "canary"}) {
      for (std::size_t w = 0; w < workers; ++w) {
        auto* s = store.route_cluster(w, "route-" + std::to_string(r), std::string("svc-") + std::to_string(r) + c);
        for (std::uint64_t i = 0; i < 50; ++i) {
          s->requests.get().add(i % 10 ? 200 : 503);
          s->request_time.get().record(100 + i * 997);
          s->upstream.get().add(i % 10 ? 200 : 503);
          s->upstream_time.get().record(90 + i * 997);
        }
      }
    }
  }
  std::string out;
  for (auto _ : state) {
    out.clear();
    store.render_prometheus(out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_Scrape100Routes)->Unit(benchmark::kMillisecond);

}  // namespace
