// Google Benchmark: one request through every step of the request path with
// no I/O — the request head parsed into views, checked, routed, its cluster
// picked, the upstream head written; the response head parsed and the
// client's written. What a proxied request costs vane in user space before
// the syscalls and the scheduler (compare bench/compare's instructions per request).
#include <benchmark/benchmark.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <string>
#include <vector>

#include "filters/route_match/route_match.hpp"
#include "proxy/config_load.hpp"
#include "proxy/http1/head_out.hpp"
#include "proxy/http1/parser.hpp"
#include "proxy/http1/request_view.hpp"
#include "proxy/request_checks.hpp"
#include "proxy/request_stream.hpp"
#include "proxy/route_table.hpp"
#include "proxy/stats.hpp"
#include "proxy/stream_state.hpp"
#include "proxy/worker.hpp"

namespace {

using namespace vane::proxy;

// A browser's GET as it reaches an ingress: 600 bytes of head, 13 fields.
const std::string request_bytes =
    "GET /api/v1/catalog/items?page=2&sort=price HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    "Accept: application/json, text/plain, */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://shop.example.com/catalog?page=1\r\n"
    "X-Request-Id: 7f3c9a2e-41b8-4c55-9d1e-2b6f0a8e4c11\r\n"
    "X-User-Id: user-48213\r\n"
    "Cookie: session=9c1f0e4b7a2d4e8f; canary=never; theme=dark\r\n"
    "Connection: keep-alive\r\n"
    "Sec-Fetch-Dest: empty\r\n"
    "Sec-Fetch-Mode: cors\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "\r\n";

const std::string response_bytes =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 100\r\n"
    "Date: Mon, 30 Nov 2026 08:00:00 GMT\r\n"
    "Cache-Control: no-store\r\n"
    "X-Upstream: v1\r\n"
    "\r\n";

// The bench's 90/10 split behind an A/B header rule, as a canary route is.
std::shared_ptr<const route_table> canary_table() {
  const std::string text =
      "listeners:\n  - name: http\n    address: 127.0.0.1:8080\n    routes:\n"
      "      - name: shop\n        match: {host: shop.example.com, path_prefix: /api}\n"
      "        rules: [{match: [{headers: {x-canary: {exact: always}}}], cluster: canary}]\n"
      "        split: [{cluster: primary, weight: 90}, {cluster: canary, weight: 10}]\n"
      "clusters:\n  - {name: primary, endpoints: [127.0.0.1:9898]}\n  - {name: canary, endpoints: [127.0.0.1:9899]}\n";
  std::vector<vane::config_error> errors;
  auto config = parse_proxy_config(text, "bench.yaml", errors);
  if (!config) std::abort();
  std::string error;
  auto table = build_route_table(*config, 1, table_inputs{}, error);
  if (!table) std::abort();
  return table;
}

template <bool isRequest>
void parse(const std::string& bytes, message_head& head, std::vector<std::string_view>& pieces) {
  h1_parser<isRequest> p(head, pieces);
  p.header_limit(64 * 1024);
  boost::system::error_code ec;
  p.put(boost::asio::buffer(bytes), ec);
  if (ec || !p.is_header_done()) std::abort();
}

// The same head into Beast's allocating basic_fields, as the proxy read it before.
void BM_ParseRequestHead600(benchmark::State& state) {
  for (auto _ : state) {
    boost::beast::http::request_parser<boost::beast::http::buffer_body> p;
    p.header_limit(64 * 1024);
    boost::system::error_code ec;
    p.put(boost::asio::buffer(request_bytes), ec);
    benchmark::DoNotOptimize(p.is_header_done());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * request_bytes.size()));
}
BENCHMARK(BM_ParseRequestHead600);

void BM_ParseRequestHeadViews600(benchmark::State& state) {
  message_head head;
  std::vector<std::string_view> pieces;
  for (auto _ : state) {
    parse<true>(request_bytes, head, pieces);
    benchmark::DoNotOptimize(head.fields.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * request_bytes.size()));
}
BENCHMARK(BM_ParseRequestHeadViews600);

void BM_RequestThroughAllSteps(benchmark::State& state) {
  const auto table = canary_table();
  stats_store stats(1);
  worker w(0, table, stats);  // never started: its policy, pools and counters only
  request_scratch scratch;
  message_head response;
  std::vector<std::string_view> pieces, response_pieces;
  std::string client_head;
  stream_request req;
  req.head = &scratch.request;
  req.client_ip = "10.0.0.1";
  req.scheme = "http";
  for (auto _ : state) {
    // The codec's part (the head parsed into views), then the stream's steps
    // as run_stream runs them, then the response head both ways.
    parse<true>(request_bytes, scratch.request, pieces);
    request_meter meter(nullptr);
    const stream_context cx{w, w.policy(), 0, scratch, meter};
    stream_state& s = scratch.stream;
    s.begin(cx, req, *w.policy(), *table);
    std::size_t next = 0;
    while (next < step_count)
      if (run_steps(s, next).stops()) std::abort();
    parse<false>(response_bytes, response, response_pieces);
    write_response_head(response, {&s.route->response_headers, s.cookies, false, connection_for(true, 11)},
                        client_head);
    s.end();
    benchmark::DoNotOptimize(client_head.data());
  }
}
BENCHMARK(BM_RequestThroughAllSteps);

}  // namespace
