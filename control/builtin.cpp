#include "control/builtin.hpp"

#include <boost/json.hpp>

namespace vane::control {

namespace json = boost::json;
using clock = std::chrono::steady_clock;

std::string series_key(std::string_view cluster, std::string_view part) {
  std::string k(cluster);
  k += '/';
  k += part;
  return k;
}

proxy_snapshot snapshot_from_stats(const json::object& stats, std::string_view route, clock::time_point at) {
  proxy_snapshot s;
  s.at = at;
  if (const auto* t = stats.if_contains("process_start_time")) s.process_start_time = t->to_number<double>();
  const auto* routes = stats.if_contains("routes");
  if (!routes || !routes->is_array()) return s;
  for (const auto& r : routes->as_array()) {
    const auto* o = r.if_object();
    if (!o || !o->contains("route") || !o->at("route").is_string() || o->at("route").as_string() != route) continue;
    std::string cluster(o->at("cluster").as_string());
    for (const char* part : {"upstream", "mirror"}) {
      const auto* p = o->if_contains(part);
      if (!p || !p->is_object()) continue;
      series se;
      auto h = std::make_shared<log_linear_histogram>();
      if (const auto* buckets = p->as_object().if_contains("buckets"); buckets && buckets->is_array()) {
        for (const auto& b : buckets->as_array()) {
          const auto& a = b.as_array();
          h->add_bucket(log_linear_histogram::index_of(a.at(0).to_number<std::uint64_t>()),
                        a.at(2).to_number<std::uint64_t>());
        }
      }
      if (const auto* codes = p->as_object().if_contains("codes"); codes && codes->is_object()) {
        for (const auto& [code, n] : codes->as_object()) {
          std::uint64_t count = n.to_number<std::uint64_t>();
          se.total += count;
          if (!code.empty() && code.front() == '5') se.errors += count;
        }
      }
      se.latency = std::move(h);
      s.by_key[series_key(cluster, part)] = std::move(se);
    }
  }
  return s;
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
    w.errors = a->second.errors - b->errors;
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
  return 100.0 * static_cast<double>(w.total - w.errors) / static_cast<double>(w.total);
}

std::optional<double> p99_ms(const window& w) {
  if (w.latency.count() == 0) return std::nullopt;
  return w.latency.quantile(0.99) / 1000.0;
}

}  // namespace vane::control
