// vane-bench: what routing costs. An open-loop load generator (no coordinated
// omission), a built-in upstream, and the proxy-overhead measurement.
#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "bench/tool/load.hpp"
#include "bench/tool/overhead.hpp"
#include "bench/tool/upstream.hpp"
#include "common/address.hpp"
#include "common/units.hpp"

namespace {

constexpr const char* usage =
    R"(usage: vane-bench load --url http[s]://IP:PORT/PATH [--rate R] [--duration D] [--connections C]
                       [--threads T] [--header K:V]... [--timeout D] [--requests N] [--json FILE] [--quiet]
                       [--cacert FILE | --insecure] [--sni NAME]
       vane-bench overhead --config FILE [--rates R1,R2,...] [--duration D] [--rounds N]
                       [--connections C] [--proxy PATH] [--upstream http://IP:PORT] [--json FILE] [--plot FILE.png]
       vane-bench upstream [--listen IP:PORT] [--body-bytes N] [--threads T] [--version V]
       vane-bench hold --url http://IP:PORT/PATH --connections N [--duration D]
       vane-bench free-port

load      HTTP/1.1 GET requests over C keep-alive connections, at R requests per
          second in all, from a schedule: request i is due at start + i/R, and its
          latency is measured from that due time, so a stall anywhere shows in the
          percentiles instead of quietly lowering the rate (open loop, as wrk2 and
          Nighthawk; no coordinated omission). --rate 0: closed loop, each
          connection sends its next request as soon as the previous one is answered
          (maximum throughput; latency from the send). Prints a progress line every
          second, then p50/p90/p99/p99.9/max (each within 0.8%: log-linear buckets
          1/64 wide), the achieved rate, and errors by kind; --json writes it all
          with the histogram. Defaults: --rate 1000 --duration 10s --connections 16
          --threads 1 --timeout 10s. Exit 1 if any request failed.
          https://: TLS 1.2/1.3 (ALPN http/1.1), one handshake per connection
          (kept alive); the server is verified against --cacert (or the system
          store) for the URL's IP, or not at all with --insecure; --sni sends a
          server name. A failed handshake counts as a connect error.
overhead  Starts vane-proxy (--proxy, default: next to vane-bench, then PATH) on
          your config, with the built-in upstream behind every cluster (or
          --upstream), and measures each rate directly and through the proxy,
          interleaved, --rounds times (default 3): prints the latency the proxy
          adds (p50, p99: medians over rounds) and the proxy's CPU time per request
          (from /proc), as a table; --plot draws the percentiles with gnuplot.
upstream  The built-in upstream: answers every request with the same 100-byte
          response, keep-alive, one SO_REUSEPORT acceptor per thread.
hold      Opens N keep-alive connections, one request on each, then keeps them
          open and idle for D (default 10s): prints "holding A answered
          connections" once all are up, and at the end how many the server
          kept open (for memory per idle connection; raise `ulimit -n` first).
free-port Prints a loopback port the OS picked (bound, then released), for
          scripts that start servers which cannot report their own port.
)";

int fail_usage(const std::string& message) {
  std::fprintf(stderr, "vane-bench: %s\n\n%s", message.c_str(), usage);
  return 2;
}

// Options shared by the subcommands' parsers: "--name value".
struct args {
  std::vector<std::string> v;
  std::size_t i = 0;
  bool next(std::string& flag) {
    if (i >= v.size()) return false;
    flag = v[i++];
    return true;
  }
  const std::string* value() { return i < v.size() ? &v[i++] : nullptr; }
};

bool parse_positive(const std::string* s, double& out) {
  if (!s) return false;
  try {
    std::size_t used = 0;
    out = std::stod(*s, &used);
    return used == s->size() && out >= 0;
  } catch (const std::exception&) {
    return false;
  }
}

boost::json::object to_json(const vane::bench::load_options& o, const vane::bench::load_result& r) {
  using vane::bench::quantile_ns;
  boost::json::array buckets;
  for (std::size_t i = 0; i < vane::log_linear_histogram::bucket_count; ++i)
    if (auto n = r.latency_ns.bucket(i))
      buckets.push_back(
          boost::json::array{vane::log_linear_histogram::lower(i), vane::log_linear_histogram::upper(i), n});
  auto us = [&](double q) { return quantile_ns(r.latency_ns, q) / 1e3; };
  return {{"url", fmt::format("{}://{}:{}{}", o.tls ? "https" : "http", o.host, o.port, o.target)},
          {"mode", o.rate > 0 ? "open-loop" : "closed-loop"},
          {"rate", o.rate},
          {"duration_s", std::chrono::duration<double>(o.duration).count()},
          {"connections", o.connections},
          {"threads", o.threads},
          {"sent", r.sent},
          {"completed", r.completed},
          {"late", r.late},
          {"seconds", r.seconds},
          {"achieved_rate", r.achieved_rate()},
          {"errors",
           {{"connect", r.errors.connect},
            {"closed", r.errors.closed},
            {"timeout", r.errors.timeout},
            {"bad_response", r.errors.bad_response},
            {"status_4xx", r.errors.status_4xx},
            {"status_5xx", r.errors.status_5xx}}},
          {"latency_us",
           {{"p50", us(0.5)},
            {"p90", us(0.9)},
            {"p99", us(0.99)},
            {"p99.9", us(0.999)},
            {"max", vane::bench::max_ns(r.latency_ns) / 1e3},
            {"mean", r.latency_ns.count()
                         ? static_cast<double>(r.latency_ns.sum()) / static_cast<double>(r.latency_ns.count()) / 1e3
                         : 0.0}}},
          {"histogram_ns", std::move(buckets)}};
}

std::string format_latency(double ns) {
  if (ns >= 1e9) return fmt::format("{:.2f}s", ns / 1e9);
  if (ns >= 1e6) return fmt::format("{:.2f}ms", ns / 1e6);
  return fmt::format("{:.0f}us", ns / 1e3);
}

int cmd_load(args a) {
  vane::bench::load_options o;
  std::string url, json_file, flag;
  bool quiet = false;
  while (a.next(flag)) {
    const std::string* v = nullptr;
    double d = 0;
    if (flag == "--quiet" || flag == "--insecure") {
      (flag == "--quiet" ? quiet : o.insecure) = true;
      continue;
    }
    if (!(v = a.value())) return fail_usage(flag + " needs a value");
    if (flag == "--url")
      url = *v;
    else if (flag == "--json")
      json_file = *v;
    else if (flag == "--cacert")
      o.ca_file = *v;
    else if (flag == "--sni")
      o.sni = *v;
    else if (flag == "--rate" && parse_positive(v, d))
      o.rate = d;
    else if (flag == "--connections" && parse_positive(v, d) && d >= 1)
      o.connections = static_cast<unsigned>(d);
    else if (flag == "--threads" && parse_positive(v, d) && d >= 1)
      o.threads = static_cast<unsigned>(d);
    else if (flag == "--requests" && parse_positive(v, d))
      o.max_requests = static_cast<std::uint64_t>(d);
    else if (flag == "--duration" || flag == "--timeout") {
      auto dur = vane::parse_duration(*v);
      if (!dur || dur->count() <= 0) return fail_usage(flag + " needs a duration such as 20s");
      (flag == "--duration" ? o.duration : o.timeout) = *dur;
    } else if (flag == "--header") {
      auto colon = v->find(':');
      if (colon == std::string::npos || colon == 0) return fail_usage("--header needs NAME:VALUE");
      std::string name = v->substr(0, colon), value = v->substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (name == "Host" || name == "host")
        o.host_header = value;
      else
        o.headers.emplace_back(name, value);
    } else
      return fail_usage("bad argument " + flag + " " + *v);
  }
  if (url.rfind("https://", 0) == 0) {
    o.tls = true;
    url = "http://" + url.substr(8);
  }
  auto u = vane::parse_http_url(url);
  boost::system::error_code ec;
  if (!u || (boost::asio::ip::make_address(u->host, ec), ec))
    return fail_usage("--url must be http[s]://IP:PORT/PATH (an IP address: vane-bench does not resolve names)");
  if (o.tls) {  // no port in the authority: 443
    std::string authority =
        url.substr(7, url.find('/', 7) == std::string::npos ? std::string::npos : url.find('/', 7) - 7);
    if (authority.find(':', authority.rfind(']') == std::string::npos ? 0 : authority.rfind(']')) == std::string::npos)
      u->port = "443";
  }
  o.host = u->host;
  o.port = static_cast<std::uint16_t>(std::stoi(u->port));
  o.target = u->target;
  if (!o.tls && (o.insecure || !o.ca_file.empty() || !o.sni.empty()))
    return fail_usage("--cacert, --insecure and --sni are for https:// URLs");
  if (!quiet)
    std::fprintf(stderr, "vane-bench: %s %s, %u connections, %u threads, %s\n", url.c_str(),
                 o.rate > 0 ? fmt::format("{:.0f} req/s open loop", o.rate).c_str() : "closed loop", o.connections,
                 o.threads, vane::format_duration(std::chrono::duration_cast<vane::duration>(o.duration)).c_str());
  auto progress = [&](const vane::bench::load_progress& p) {
    if (!quiet)
      std::fprintf(stderr, "  %5.1fs  %9llu done  %8.0f req/s  p99 %8.3fms  errors %llu\n", p.elapsed,
                   static_cast<unsigned long long>(p.completed), p.rate_last_second, p.p99_ms,
                   static_cast<unsigned long long>(p.errors));
  };
  auto r = vane::bench::run_load(o, progress);
  using vane::bench::quantile_ns;
  std::printf("requests   %llu sent, %llu answered in %.2fs: %.0f req/s%s\n", static_cast<unsigned long long>(r.sent),
              static_cast<unsigned long long>(r.completed), r.seconds, r.achieved_rate(),
              o.rate > 0 ? fmt::format(" (asked {:.0f})", o.rate).c_str() : "");
  std::printf(
      "latency    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s%s\n", format_latency(quantile_ns(r.latency_ns, 0.5)).c_str(),
      format_latency(quantile_ns(r.latency_ns, 0.9)).c_str(), format_latency(quantile_ns(r.latency_ns, 0.99)).c_str(),
      format_latency(quantile_ns(r.latency_ns, 0.999)).c_str(),
      format_latency(vane::bench::max_ns(r.latency_ns)).c_str(), o.rate > 0 ? "  (from each request's due time)" : "");
  if (o.rate > 0 && r.late)
    std::printf("late       %llu requests were sent over 1ms after their due time (every connection busy)\n",
                static_cast<unsigned long long>(r.late));
  std::printf("errors     %llu: connect %llu, closed %llu, timeout %llu, bad response %llu, 4xx %llu, 5xx %llu\n",
              static_cast<unsigned long long>(r.errors.total()), static_cast<unsigned long long>(r.errors.connect),
              static_cast<unsigned long long>(r.errors.closed), static_cast<unsigned long long>(r.errors.timeout),
              static_cast<unsigned long long>(r.errors.bad_response),
              static_cast<unsigned long long>(r.errors.status_4xx),
              static_cast<unsigned long long>(r.errors.status_5xx));
  if (!json_file.empty()) {
    std::ofstream out(json_file);
    out << boost::json::serialize(to_json(o, r)) << "\n";
    if (!out) {
      std::fprintf(stderr, "vane-bench: cannot write %s\n", json_file.c_str());
      return 1;
    }
  }
  return r.errors.total() == 0 ? 0 : 1;
}

int cmd_hold(args a) {
  vane::bench::load_options o;
  std::chrono::nanoseconds hold = std::chrono::seconds(10);
  std::string url, flag;
  while (a.next(flag)) {
    const std::string* v = a.value();
    double d = 0;
    if (!v) return fail_usage(flag + " needs a value");
    if (flag == "--url")
      url = *v;
    else if (flag == "--connections" && parse_positive(v, d) && d >= 1)
      o.connections = static_cast<unsigned>(d);
    else if (flag == "--duration") {
      auto dur = vane::parse_duration(*v);
      if (!dur || dur->count() <= 0) return fail_usage("--duration needs a duration such as 10s");
      hold = *dur;
    } else
      return fail_usage("bad argument " + flag + " " + *v);
  }
  auto u = vane::parse_http_url(url);
  boost::system::error_code ec;
  if (!u || (boost::asio::ip::make_address(u->host, ec), ec)) return fail_usage("--url must be http://IP:PORT/PATH");
  o.host = u->host;
  o.port = static_cast<std::uint16_t>(std::stoi(u->port));
  o.target = u->target;
  auto open = vane::bench::hold_connections(o, hold, [&](std::uint64_t answered) {
    std::printf("holding %llu answered connections of %u\n", static_cast<unsigned long long>(answered), o.connections);
    std::fflush(stdout);
  });
  std::printf("%llu of them still open after %s\n", static_cast<unsigned long long>(open),
              vane::format_duration(std::chrono::duration_cast<vane::duration>(hold)).c_str());
  return open == o.connections ? 0 : 1;
}

int cmd_upstream(args a) {
  vane::bench::upstream_options o;
  std::string flag;
  while (a.next(flag)) {
    const std::string* v = a.value();
    double d = 0;
    if (!v) return fail_usage(flag + " needs a value");
    if (flag == "--listen")
      o.listen = *v;
    else if (flag == "--body-bytes" && parse_positive(v, d))
      o.body_bytes = static_cast<std::size_t>(d);
    else if (flag == "--threads" && parse_positive(v, d) && d >= 1)
      o.threads = static_cast<unsigned>(d);
    else if (flag == "--version")
      o.version = *v;
    else
      return fail_usage("bad argument " + flag + " " + *v);
  }
  return vane::bench::run_upstream(o);
}

int cmd_overhead(args a) {
  vane::bench::overhead_options o;
  std::string flag;
  while (a.next(flag)) {
    const std::string* v = a.value();
    double d = 0;
    if (!v) return fail_usage(flag + " needs a value");
    if (flag == "--config")
      o.config = *v;
    else if (flag == "--proxy")
      o.proxy = *v;
    else if (flag == "--upstream")
      o.upstream = *v;
    else if (flag == "--json")
      o.json_file = *v;
    else if (flag == "--plot")
      o.plot_file = *v;
    else if (flag == "--rounds" && parse_positive(v, d) && d >= 1)
      o.rounds = static_cast<unsigned>(d);
    else if (flag == "--connections" && parse_positive(v, d) && d >= 1)
      o.connections = static_cast<unsigned>(d);
    else if (flag == "--duration") {
      auto dur = vane::parse_duration(*v);
      if (!dur || dur->count() <= 0) return fail_usage("--duration needs a duration such as 5s");
      o.duration = *dur;
    } else if (flag == "--rates") {
      o.rates.clear();
      std::size_t at = 0;
      while (at <= v->size()) {
        auto comma = v->find(',', at);
        std::string one = v->substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        if (!parse_positive(&one, d) || d <= 0) return fail_usage("--rates needs positive numbers: 1000,5000");
        o.rates.push_back(d);
        if (comma == std::string::npos) break;
        at = comma + 1;
      }
    } else
      return fail_usage("bad argument " + flag + " " + *v);
  }
  if (o.config.empty()) return fail_usage("overhead needs --config");
  return vane::bench::run_overhead(o);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  if (argc < 2) return fail_usage("which command?");
  std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(usage, stdout);
    return 0;
  }
  args a{std::vector<std::string>(argv + 2, argv + argc)};
  for (const auto& s : a.v)
    if (s == "--help" || s == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
  try {
    if (cmd == "load") return cmd_load(a);
    if (cmd == "upstream") return cmd_upstream(a);
    if (cmd == "overhead") return cmd_overhead(a);
    if (cmd == "hold") return cmd_hold(a);
    if (cmd == "free-port") {
      boost::asio::io_context ctx;
      boost::asio::ip::tcp::acceptor acc(ctx, {boost::asio::ip::make_address("127.0.0.1"), 0});
      std::printf("%u\n", acc.local_endpoint().port());
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vane-bench: %s\n", e.what());
    return 1;
  }
  return fail_usage("unknown command '" + cmd + "'");
}
