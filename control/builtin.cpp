#include "control/builtin.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "common/grpc.hpp"

namespace vane::control {

namespace json = boost::json;
using clock = std::chrono::steady_clock;

std::string series_key(std::string_view cluster, std::string_view part) {
  std::string k(cluster);
  k += '/';
  k += part;
  return k;
}

parsed<proxy_snapshot> read_snapshot(const json::object& stats, std::string_view route, clock::time_point at,
                                     std::uint32_t grpc_failures) {
  using result = parsed<proxy_snapshot>;
  proxy_snapshot s;
  s.at = at;
  if (const auto* t = stats.if_contains("process_start_time")) {
    auto v = as_number(*t);
    if (!v) return result::fail(fmt::format("process_start_time is {}, not a number", kind_of(*t)));
    s.process_start_time = *v;
  }
  const auto* routes = stats.if_contains("routes");
  if (!routes) return result::fail("no \"routes\" in the answer");
  if (!routes->is_array()) return result::fail(fmt::format("\"routes\" is {}, not an array", kind_of(*routes)));
  for (const auto& r : routes->get_array()) {
    const auto* o = r.if_object();
    if (!o) return result::fail(fmt::format("a route entry is {}, not an object", kind_of(r)));
    auto name = member_string(*o, "route");
    if (!name) return result::fail("a route entry without a \"route\" string");
    if (*name != route) continue;
    auto cluster = member_string(*o, "cluster");
    if (!cluster) return result::fail(fmt::format("route {}: an entry without a \"cluster\" string", route));
    for (const char* part : {"upstream", "mirror"}) {
      const auto* p = o->if_contains(part);
      if (!p || p->is_null()) continue;
      const auto* po = p->if_object();
      if (!po)
        return result::fail(
            fmt::format("route {} cluster {}: {} is {}, not an object", route, *cluster, part, kind_of(*p)));
      series se;
      auto h = std::make_shared<log_linear_histogram>();
      if (const auto* buckets = po->if_contains("buckets"); buckets && !buckets->is_null()) {
        if (!buckets->is_array())
          return result::fail(fmt::format("{} buckets are {}, not an array", part, kind_of(*buckets)));
        for (const auto& b : buckets->get_array()) {
          const auto* a = b.if_array();
          std::optional<std::uint64_t> lower, count;
          if (a && a->size() == 3) {
            lower = as_count((*a)[0]);
            count = as_count((*a)[2]);
          }
          if (!lower || !count)
            return result::fail(
                fmt::format("{} bucket {} is not [lower, upper, count]", part, excerpt(json::serialize(b))));
          h->add_bucket(log_linear_histogram::index_of(*lower), *count);
        }
      }
      if (const auto* codes = po->if_contains("codes"); codes && !codes->is_null()) {
        if (!codes->is_object())
          return result::fail(fmt::format("{} codes are {}, not an object", part, kind_of(*codes)));
        for (const auto& [code, n] : codes->get_object()) {
          auto count = as_count(n);
          if (!count)
            return result::fail(fmt::format("{} code {} counts {}, not a count", part, std::string_view(code),
                                            excerpt(json::serialize(n))));
          if (se.total + *count < se.total) return result::fail(fmt::format("{} counts overflow", part));
          se.total += *count;
          if (!code.empty() && code.front() == '5') se.errors += *count;
        }
      }
      // gRPC statuses of the attempts answered with a non-5xx HTTP status: those of the failure set are errors.
      if (const auto* grpc = po->if_contains("grpc"); grpc && !grpc->is_null()) {
        if (!grpc->is_object()) return result::fail(fmt::format("{} grpc is {}, not an object", part, kind_of(*grpc)));
        for (const auto& [code, n] : grpc->get_object()) {
          auto count = as_count(n);
          const auto status = parse_grpc_code(code);
          if (!count || !status)
            return result::fail(fmt::format("{} grpc status {} counts {}, not a status and a count", part,
                                            std::string_view(code), excerpt(json::serialize(n))));
          if (((grpc_failures >> *status) & 1U) == 0) continue;
          if (se.errors + *count < se.errors) return result::fail(fmt::format("{} grpc failure counts overflow", part));
          // At most the attempts: the proxy counts a call's gRPC status as its trailers come, its attempt a
          // moment later, and a read between the two sees more failures than attempts.
          se.errors = std::min(se.errors + *count, se.total);
        }
      }
      se.latency = std::move(h);
      s.by_key[series_key(*cluster, part)] = std::move(se);
    }
  }
  return result{std::move(s), {}};
}

proxy_snapshot snapshot_from_stats(const json::object& stats, std::string_view route, clock::time_point at,
                                   std::uint32_t grpc_failures) {
  auto s = read_snapshot(stats, route, at, grpc_failures);
  if (s) return std::move(*s.value);
  proxy_snapshot empty;
  empty.at = at;
  return empty;
}

void window::add(const window& w) {
  total += w.total;
  errors += w.errors;
  latency.merge(w.latency);
  inconclusive = inconclusive || w.inconclusive;
}

window delta(const proxy_snapshot* before, const proxy_snapshot& after, const std::string& key) {
  window w;
  auto a = after.by_key.find(key);
  if (a == after.by_key.end()) return w;  // no traffic at all yet
  const series* b = nullptr;
  if (before) {
    auto it = before->by_key.find(key);
    if (it != before->by_key.end()) b = &it->second;
  }
  bool reset = before && before->process_start_time != after.process_start_time;
  if (b && !reset) {
    reset = a->second.total < b->total || a->second.errors < b->errors;
    for (std::size_t i = 0; !reset && i < log_linear_histogram::bucket_count; ++i)
      reset = a->second.latency->bucket(i) < b->latency->bucket(i);
  }
  if (b && !reset) {
    w.total = a->second.total - b->total;
    w.errors = std::min(a->second.errors - b->errors, w.total);  // (see read_snapshot: counted a moment apart)
    for (std::size_t i = 0; i < log_linear_histogram::bucket_count; ++i)
      if (auto n = a->second.latency->bucket(i) - b->latency->bucket(i)) w.latency.add_bucket(i, n);
  } else {
    w.total = a->second.total;
    w.errors = a->second.errors;
    w.latency.merge(*a->second.latency);
  }
  return w;
}

void proxy_history::add(proxy_snapshot s, clock::duration keep) {
  snaps_.push_back(std::move(s));
  // Keep one snapshot older than `keep`, so a window of that length has its start.
  while (snaps_.size() > 2 && snaps_[1].at <= snaps_.back().at - keep) snaps_.pop_front();
}

std::optional<window> proxy_history::over(clock::duration interval, const std::string& key) const {
  if (snaps_.empty()) return std::nullopt;
  const proxy_snapshot& last = snaps_.back();
  if (snaps_.size() == 1) {
    window w;
    w.inconclusive = true;  // seen for the first time: no start for a window
    return w;
  }
  const proxy_snapshot* start = &snaps_.front();
  for (const auto& s : snaps_) {
    if (&s == &last) break;
    if (s.at <= last.at - interval) start = &s;
  }
  return delta(start, last, key);
}

std::optional<double> success_rate(const window& w) {
  if (w.total == 0) return std::nullopt;
  const std::uint64_t errors = std::min(w.errors, w.total);  // (never a wrapped-around difference)
  return 100.0 * static_cast<double>(w.total - errors) / static_cast<double>(w.total);
}

std::optional<double> p99_ms(const window& w) {
  if (w.latency.count() == 0) return std::nullopt;
  return w.latency.quantile(0.99) / 1000.0;
}

metric_reading builtin_reading(const metric_spec& m, const std::map<std::string, proxy_history>& histories,
                               std::size_t unreachable, std::string_view canary, std::string_view primary,
                               bool mirror) {
  metric_reading out;
  window canary_w, primary_w;
  const std::string canary_key = series_key(canary, mirror ? "mirror" : "upstream");
  const std::string primary_key = series_key(primary, "upstream");
  for (const auto& [url, h] : histories) {
    if (auto w = h.over(m.interval, canary_key)) canary_w.add(*w);
    if (auto w = h.over(m.interval, primary_key)) primary_w.add(*w);
  }
  if (unreachable > 0) {
    out.inconclusive = true;  // its missing numbers must not count as zero errors
    out.why = fmt::format("{} proxies unreachable", unreachable);
  } else if (histories.empty()) {
    out.inconclusive = true;
    out.why = "no proxies to read";
  } else if (canary_w.inconclusive) {
    out.inconclusive = true;
    out.why = "first window";
  } else if (m.min_requests && canary_w.total < *m.min_requests) {
    out.inconclusive = true;
    out.why = fmt::format("{} requests < minRequests {}", canary_w.total, *m.min_requests);
  } else if (m.name == "request-success-rate") {
    out.value = success_rate(canary_w);
    if (out.value && m.relative_to_primary) {
      auto p = success_rate(primary_w);
      out.value = p ? std::optional<double>(*out.value - *p) : std::nullopt;
    }
  } else {
    out.value = p99_ms(canary_w);
    if (out.value && m.relative_to_primary) {
      auto p = p99_ms(primary_w);
      out.value = p && *p > 0 ? std::optional<double>(*out.value / *p) : std::nullopt;
    }
  }
  return out;
}

}  // namespace vane::control
