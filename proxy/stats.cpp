#include "proxy/stats.hpp"

#include <dirent.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

namespace vane::proxy {

namespace json = boost::json;
using metrics::label;

template <typename T>
T* stats_store::get(per_worker<T>& slots, std::size_t worker) {
  if (slots.empty()) slots.resize(workers_);
  auto& p = slots.at(worker);
  if (!p) p = std::make_unique<T>();
  return p.get();
}

route_cluster_stats* stats_store::route_cluster(std::size_t worker, std::string_view route, std::string_view cluster) {
  std::lock_guard lock(mu_);
  return get(route_clusters_[{std::string(route), std::string(cluster)}], worker);
}

cluster_stats* stats_store::cluster(std::size_t worker, std::string_view name) {
  std::lock_guard lock(mu_);
  return get(clusters_[std::string(name)], worker);
}

listener_stats* stats_store::listener(std::size_t worker, std::string_view name) {
  std::lock_guard lock(mu_);
  return get(listeners_[std::string(name)], worker);
}

metrics::counter* stats_store::fallbacks(std::size_t worker, std::string_view route, std::string_view from,
                                         std::string_view to) {
  std::lock_guard lock(mu_);
  return get(fallbacks_[{std::string(route), std::string(from), std::string(to)}], worker);
}

namespace {

using rc_map = std::map<std::pair<std::string, std::string>, std::vector<std::unique_ptr<route_cluster_stats>>>;
using status_member = metrics::lazy<metrics::status_counters> route_cluster_stats::*;
using histogram_member = metrics::lazy<metrics::concurrent_histogram> route_cluster_stats::*;

// The workers' counts for one label set, by code; false when no worker has any.
bool merged_codes(const std::vector<std::unique_ptr<route_cluster_stats>>& slots, status_member m,
                  std::array<std::uint64_t, metrics::status_counters::last + 1>& out) {
  out.fill(0);
  bool any = false;
  for (const auto& s : slots) {
    if (!s) continue;
    const auto* c = ((*s).*m).peek();
    if (!c) continue;
    any = true;
    for (unsigned code = metrics::status_counters::first; code <= metrics::status_counters::last; ++code)
      out[code] += c->value(code);
  }
  return any;
}

bool merged_histogram(const std::vector<std::unique_ptr<route_cluster_stats>>& slots, histogram_member m,
                      log_linear_histogram& out) {
  out.clear();
  bool any = false;
  for (const auto& s : slots) {
    if (!s) continue;
    if (const auto* h = ((*s).*m).peek()) {
      h->add_to(out);
      any = true;
    }
  }
  return any;
}

void render_status_family(metrics::prometheus_writer& w, const rc_map& slots, std::string_view name,
                          std::string_view help, status_member m) {
  w.family(name, "counter", help);
  std::array<std::uint64_t, metrics::status_counters::last + 1> codes{};
  char code_text[4];
  for (const auto& [labels, per_worker] : slots) {
    if (!merged_codes(per_worker, m, codes)) continue;
    for (unsigned code = metrics::status_counters::first; code <= metrics::status_counters::last; ++code) {
      if (!codes[code]) continue;
      code_text[0] = static_cast<char>('0' + code / 100);
      code_text[1] = static_cast<char>('0' + code / 10 % 10);
      code_text[2] = static_cast<char>('0' + code % 10);
      label l[] = {{"route", labels.first}, {"cluster", labels.second}, {"code", std::string_view(code_text, 3)}};
      w.sample(name, l, codes[code]);
    }
  }
}

void render_histogram_family(metrics::prometheus_writer& w, const rc_map& slots, std::string_view name,
                             std::string_view help, histogram_member m, log_linear_histogram& scratch) {
  w.family(name, "histogram", help);
  for (const auto& [labels, per_worker] : slots) {
    if (!merged_histogram(per_worker, m, scratch)) continue;
    label l[] = {{"route", labels.first}, {"cluster", labels.second}};
    w.histogram_seconds(name, l, scratch, metrics::duration_bounds());
  }
}

json::object histogram_json(const log_linear_histogram& h) {
  json::array buckets;
  for (std::size_t i = 0; i < log_linear_histogram::bucket_count; ++i) {
    if (std::uint64_t n = h.bucket(i))
      buckets.push_back(json::array{log_linear_histogram::lower(i), log_linear_histogram::upper(i), n});
  }
  return {{"count", h.count()}, {"sum", h.sum()}, {"buckets", std::move(buckets)}};
}

json::object codes_json(const std::array<std::uint64_t, metrics::status_counters::last + 1>& codes) {
  json::object o;
  for (unsigned code = metrics::status_counters::first; code <= metrics::status_counters::last; ++code)
    if (codes[code]) o[std::to_string(code)] = codes[code];
  return o;
}

using grpc_member = metrics::lazy<metrics::grpc_status_counters> route_cluster_stats::*;

// The workers' gRPC counts summed; false when none counted any.
bool merged_grpc(const std::vector<std::unique_ptr<route_cluster_stats>>& slots, grpc_member m,
                 std::array<std::uint64_t, metrics::grpc_status_counters::count>& out) {
  out.fill(0);
  bool any = false;
  for (const auto& s : slots) {
    const auto* c = s ? ((*s).*m).peek() : nullptr;
    if (!c) continue;
    any = true;
    for (unsigned i = 0; i < out.size(); ++i) out[i] += c->value(i);
  }
  return any;
}

void render_grpc_family(metrics::prometheus_writer& w, const rc_map& slots, std::string_view name,
                        std::string_view help, grpc_member m) {
  w.family(name, "counter", help);
  std::array<std::uint64_t, metrics::grpc_status_counters::count> counts{};
  for (const auto& [labels, per_worker] : slots) {
    if (!merged_grpc(per_worker, m, counts)) continue;
    for (unsigned status = 0; status < counts.size(); ++status) {
      if (!counts[status]) continue;
      const std::string text = std::to_string(status);
      label l[] = {{"route", labels.first}, {"cluster", labels.second}, {"grpc_status", text}};
      w.sample(name, l, counts[status]);
    }
  }
}

}  // namespace

void stats_store::render_prometheus(std::string& out) const {
  std::lock_guard lock(mu_);
  metrics::prometheus_writer w(out);
  auto scratch = std::make_unique<log_linear_histogram>();
  render_status_family(w, route_clusters_, "vane_requests_total",
                       "Downstream requests by the status sent to the client (499: the client went away first).",
                       &route_cluster_stats::requests);
  render_histogram_family(w, route_clusters_, "vane_request_duration_seconds",
                          "Downstream request duration, to the last byte sent to the client.",
                          &route_cluster_stats::request_time, *scratch);
  render_status_family(w, route_clusters_, "vane_upstream_responses_total",
                       "Upstream attempts (retries included) by the upstream's status, or 502/503/504 when the "
                       "proxy got none.",
                       &route_cluster_stats::upstream);
  render_histogram_family(w, route_clusters_, "vane_upstream_duration_seconds", "Upstream attempt duration.",
                          &route_cluster_stats::upstream_time, *scratch);
  render_grpc_family(w, route_clusters_, "vane_grpc_requests_total",
                     "gRPC requests by the grpc-status the client got (a local reply's included).",
                     &route_cluster_stats::grpc);
  render_grpc_family(w, route_clusters_, "vane_upstream_grpc_responses_total",
                     "gRPC upstream attempts by grpc-status (derived from the HTTP status when none came).",
                     &route_cluster_stats::upstream_grpc);
  render_status_family(w, route_clusters_, "vane_mirror_responses_total",
                       "Mirror attempts that got an answer (or 502/504).", &route_cluster_stats::mirror);
  render_histogram_family(w, route_clusters_, "vane_mirror_duration_seconds", "Mirror attempt duration.",
                          &route_cluster_stats::mirror_time, *scratch);

  auto sum = [](const std::vector<std::unique_ptr<route_cluster_stats>>& slots,
                metrics::counter route_cluster_stats::*m) {
    std::uint64_t n = 0;
    for (const auto& s : slots)
      if (s) n += ((*s).*m).value();
    return n;
  };
  w.family("vane_mirror_shed_total", "counter", "Mirror copies not sent, by reason.");
  for (const auto& [labels, slots] : route_clusters_) {
    if (labels.first == unrouted_label) continue;
    for (auto [reason, member] : {std::pair{"overload", &route_cluster_stats::mirror_shed_overload},
                                  std::pair{"body_too_large", &route_cluster_stats::mirror_shed_body}}) {
      label l[] = {{"route", labels.first}, {"cluster", labels.second}, {"reason", reason}};
      w.sample("vane_mirror_shed_total", l, sum(slots, member));
    }
  }
  w.family("vane_retries_total", "counter", "Upstream attempts after the first of a request.");
  for (const auto& [labels, slots] : route_clusters_) {
    if (labels.first == unrouted_label) continue;
    label l[] = {{"route", labels.first}, {"cluster", labels.second}};
    w.sample("vane_retries_total", l, sum(slots, &route_cluster_stats::retries));
  }
  w.family("vane_guard_trips_total", "counter",
           "Trips of a route's proxy guard: the cluster got no new request until a traffic PUT reset it.");
  for (const auto& [labels, slots] : route_clusters_) {
    if (labels.first == unrouted_label) continue;
    label l[] = {{"route", labels.first}, {"cluster", labels.second}};
    w.sample("vane_guard_trips_total", l, sum(slots, &route_cluster_stats::guard_trips));
  }
  w.family("vane_fallbacks_total", "counter",
           "Requests sent to a route's fallback cluster after a failed attempt on the cluster it falls back from.");
  for (const auto& [labels, slots] : fallbacks_) {
    std::uint64_t n = 0;
    for (const auto& s : slots)
      if (s) n += s->value();
    label l[] = {{"route", labels[0]}, {"from", labels[1]}, {"to", labels[2]}};
    w.sample("vane_fallbacks_total", l, n);
  }
  w.family("vane_upstream_connect_errors_total", "counter", "Failed or timed-out connection attempts to upstreams.");
  for (const auto& [name, slots] : clusters_) {
    std::uint64_t n = 0;
    for (const auto& s : slots)
      if (s) n += s->connect_errors.value();
    label l[] = {{"cluster", name}};
    w.sample("vane_upstream_connect_errors_total", l, n);
  }
  w.family("vane_downstream_connections_active", "gauge", "Open downstream connections.");
  for (const auto& [name, slots] : listeners_) {
    std::int64_t n = 0;
    for (const auto& s : slots)
      if (s) n += s->connections_active.value();
    label l[] = {{"listener", name}};
    w.sample("vane_downstream_connections_active", l, static_cast<double>(n));
  }
  w.family("vane_downstream_streams_active", "gauge", "HTTP/2 streams being served.");
  for (const auto& [name, slots] : listeners_) {
    std::int64_t n = 0;
    for (const auto& s : slots)
      if (s) n += s->streams_active.value();
    label l[] = {{"listener", name}};
    w.sample("vane_downstream_streams_active", l, static_cast<double>(n));
  }
  w.family("vane_http2_protocol_errors_total", "counter",
           "HTTP/2 connections ended (GOAWAY or closed) or streams reset by vane for a client's abuse or error.");
  for (const auto& [name, slots] : listeners_) {
    for (std::size_t r = 0; r < static_cast<std::size_t>(h2_error_reason::count); ++r) {
      std::uint64_t n = 0;
      for (const auto& s : slots)
        if (s) n += s->h2_errors[r].value();
      label l[] = {{"listener", name}, {"reason", h2_error_names[r]}};
      w.sample("vane_http2_protocol_errors_total", l, n);
    }
  }
  // The listeners' counters, summed over the workers.
  auto listener_counter = [&](const char* family, const char* help, metrics::counter listener_stats::*member) {
    w.family(family, "counter", help);
    for (const auto& [name, slots] : listeners_) {
      std::uint64_t n = 0;
      for (const auto& s : slots)
        if (s) n += ((*s).*member).value();
      label l[] = {{"listener", name}};
      w.sample(family, l, n);
    }
  };
  listener_counter("vane_downstream_connections_refused_total",
                   "Downstream connections closed at accept because limits.max_connections was reached.",
                   &listener_stats::connections_refused);
  listener_counter("vane_downstream_tls_handshake_errors_total",
                   "TLS handshakes with clients that failed or timed out (the connection was closed).",
                   &listener_stats::tls_handshake_errors);
}

json::array stats_store::latency_json() const {
  std::lock_guard lock(mu_);
  json::array routes;
  auto scratch = std::make_unique<log_linear_histogram>();
  std::array<std::uint64_t, metrics::status_counters::last + 1> codes{};
  for (const auto& entry : route_clusters_) {
    // (not a structured binding: the lambda below captures it, which clang 14 refuses)
    const auto& labels = entry.first;
    const auto& slots = entry.second;
    json::object o{{"route", labels.first}, {"cluster", labels.second}};
    auto part = [&](const char* key, status_member c, histogram_member h) {
      bool any_codes = merged_codes(slots, c, codes);
      bool any_times = merged_histogram(slots, h, *scratch);
      if (!any_codes && !any_times) return;
      json::object p = histogram_json(*scratch);
      p["codes"] = codes_json(codes);
      o[key] = std::move(p);
    };
    part("downstream", &route_cluster_stats::requests, &route_cluster_stats::request_time);
    part("upstream", &route_cluster_stats::upstream, &route_cluster_stats::upstream_time);
    // gRPC statuses of attempts answered with a non-5xx HTTP status (vane-control counts its failure set).
    std::array<std::uint64_t, metrics::grpc_status_counters::count> statuses{};
    if (merged_grpc(slots, &route_cluster_stats::upstream_grpc_answered, statuses) && o.contains("upstream")) {
      json::object g;
      for (unsigned st = 0; st < statuses.size(); ++st)
        if (statuses[st]) g[std::to_string(st)] = statuses[st];
      o["upstream"].as_object()["grpc"] = std::move(g);
    }
    part("mirror", &route_cluster_stats::mirror, &route_cluster_stats::mirror_time);
    if (o.size() > 2) routes.push_back(std::move(o));
  }
  return routes;
}

std::uint64_t stats_store::connections_active(std::string_view listener) const {
  std::lock_guard lock(mu_);
  auto it = listeners_.find(listener);
  if (it == listeners_.end()) return 0;
  std::int64_t n = 0;
  for (const auto& s : it->second)
    if (s) n += s->connections_active.value();
  return n > 0 ? static_cast<std::uint64_t>(n) : 0;
}

void render_process_metrics(std::string& out, double start_time_seconds) {
  metrics::prometheus_writer w(out);
  // /proc/self/stat: fields 14 and 15 are utime and stime in clock ticks; the
  // command name (field 2) may hold spaces, so parse after its closing paren.
  double cpu = 0;
  std::uint64_t rss_pages = 0;
  {
    std::ifstream f("/proc/self/stat");
    std::string line;
    std::getline(f, line);
    auto paren = line.rfind(')');
    if (paren != std::string::npos) {
      std::istringstream in(line.substr(paren + 2));
      std::string field;
      std::vector<std::string> fields;
      while (in >> field) fields.push_back(field);
      // fields[0] is field 3 (state): utime is field 14 -> index 11, stime 12, rss (field 24) 21.
      if (fields.size() > 21) {
        double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
        cpu = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
        rss_pages = std::stoull(fields[21]);
      }
    }
  }
  std::uint64_t fds = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++fds;
    ::closedir(d);
    if (fds) --fds;  // the directory stream's own descriptor
  }
  w.family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
  w.sample("process_start_time_seconds", {}, start_time_seconds);
  w.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  w.sample("process_cpu_seconds_total", {}, cpu);
  w.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  w.sample("process_resident_memory_bytes", {}, rss_pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)));
  w.family("process_open_fds", "gauge", "Number of open file descriptors.");
  w.sample("process_open_fds", {}, fds);
}

}  // namespace vane::proxy
