#include "proxy/runtime.hpp"

#include <limits.h>
#include <sys/inotify.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <csignal>
#include <filesystem>

#include "common/listen.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "proxy/config_load.hpp"
#include "proxy/config_watch.hpp"
#include "proxy/route_policy.hpp"
#include "proxy/stats.hpp"
#include "proxy/tls.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

runtime::runtime(std::string config_path, proxy_config config, std::size_t workers, const std::string& access_log)
    : config_path_(std::move(config_path)), file_config_(std::move(config)), guards_(workers) {
  std::string message;
  if (auto text = read_file(config_path_, message)) config_text_ = *text;
  effective_ = file_config_;
  std::string error;
  tls_ = std::make_unique<tls_cache>();
  table_inputs first;
  first.tls = tls_.get();
  first.guards = &guards_;
  table_ = build_route_table(effective_, generation_, first, error);
  if (!table_) throw std::runtime_error(error);
  for (const auto& l : effective_.listeners)
    for (const auto& r : l.routes) policy_generation_[r.name] = 1;
  server_ = std::make_unique<server>(table_, workers);
  if (!access_log.empty()) {
    access_log_ = std::make_unique<access_logger>(access_log, workers);
    server_->set_access_log(*access_log_);
  }
  // In whole milliseconds: the value readers compare to notice a restart prints the same everywhere.
  start_time_ = static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count()) /
                1000.0;
}

namespace {
// The port of a "HOST:PORT" the server says it bound (0 if none).
std::uint16_t port_of(const std::string& bound) {
  const auto colon = bound.rfind(':');
  unsigned port = 0;
  if (colon != std::string::npos) std::from_chars(bound.data() + colon + 1, bound.data() + bound.size(), port);
  return port <= 65535 ? static_cast<std::uint16_t>(port) : 0;
}

// Whether one of `held` (this process's listening sockets: host, port bound) takes `wanted`'s port on an
// overlapping host (the same host, or a wildcard on either side): a probe for it would meet our own socket.
bool held_by_us(const std::vector<host_port>& held, const host_port& wanted) {
  auto wildcard = [](const std::string& h) { return h == "0.0.0.0" || h == "::"; };
  return std::any_of(held.begin(), held.end(), [&](const host_port& h) {
    return h.port == wanted.port && (h.host == wanted.host || wildcard(h.host) || wildcard(wanted.host));
  });
}
}  // namespace

runtime::~runtime() = default;

void runtime::start() {
  // Before anything is announced: a signal or an edit right after the
  // "listening" lines is handled (asio queues signals until they are awaited).
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  signals_.add(SIGHUP);
  signals_.add(SIGUSR1);
  watch_file_setup();
  std::vector<host_port> held;  // (two listeners of one config may share a port on two hosts)
  std::map<std::string, std::uint16_t> bound_ports;
  for (const auto& l : table_->listeners) {
    std::string bound = server_->bind(l, !held_by_us(held, l.address));
    bound_ports[l.name] = port_of(bound);
    held.push_back({l.address.host, bound_ports[l.name]});
    log::info("listener {} listening on {} ({} workers)", l.name, bound, server_->size());
  }
  const auto& admin = file_config_.admin;
  tcp::endpoint ep(asio::ip::make_address(admin.address.host), admin.address.port);
  boost::system::error_code ec;
  admin_acceptor_.emplace(listen_on(ctx_.get_executor(), ep, false, ec));
  if (ec) throw std::runtime_error("admin: cannot listen on " + admin.address.to_string() + ": " + ec.message());
  auto bound = admin_acceptor_->local_endpoint();
  log::info("admin listening on {}{}", host_port{bound.address().to_string(), bound.port()}.to_string(),
            admin.token.empty() ? "" : " (bearer token required)");
  if (access_log_) access_log_->start();
  server_->start();
  for (const auto& l : effective_.listeners)
    listeners_[l.name] = {l.address, server_->initial_listener_ids().at(l.name), bound_ports[l.name]};
  ready_ = true;
}

int runtime::run() {
  asio::co_spawn(ctx_, serve_admin(), asio::detached);
  asio::co_spawn(ctx_, wait_signals(), asio::detached);
  asio::co_spawn(ctx_, watch_file(), asio::detached);
  asio::co_spawn(ctx_, refresh_dns(), asio::detached);
  asio::co_spawn(ctx_, watch_certificates(), asio::detached);
  start_health_checks();
  ctx_.run();
  server_->stop();
  if (access_log_) access_log_->stop();  // after the workers: their last lines are written
  log::info("stopped");
  return exit_code_;
}

asio::awaitable<void> runtime::wait_signals() {
  for (;;) {
    auto [ec, sig] = co_await signals_.async_wait(nothrow);
    if (ec) co_return;
    if (sig == SIGHUP) {
      asio::co_spawn(ctx_, reload("SIGHUP", false), asio::detached);
    } else if (sig == SIGUSR1) {
      if (access_log_) access_log_->reopen();
    } else if (draining_) {
      log::info("signal {} while draining: stopping now", sig);
      ctx_.stop();
      co_return;
    } else {
      start_drain(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    }
  }
}

// Watches the config file's directory: editors replace files, and Kubernetes
// swaps the `..data` symlink of a mounted ConfigMap, so a watch on the file
// itself would miss both. An event on the file's name or `..data` leads to a
// re-read (events_name_config); the reload happens only when the content
// differs from what is loaded.
void runtime::watch_file_setup() {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    log::warn("config watch: inotify unavailable ({}); reload with SIGHUP", std::strerror(errno));
    return;
  }
  auto dir = std::filesystem::absolute(config_path_).parent_path();
  if (inotify_add_watch(fd, dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE) < 0) {
    log::warn("config watch: cannot watch {}: {}; reload with SIGHUP", dir.string(), std::strerror(errno));
    ::close(fd);
    return;
  }
  watch_.emplace(ctx_, fd);
}

asio::awaitable<void> runtime::watch_file() {
  if (!watch_) co_return;
  auto& events = *watch_;
  asio::steady_timer settle(ctx_);
  // Room for many events at once: one read returns whole events only.
  alignas(inotify_event) char buf[16 * (sizeof(inotify_event) + NAME_MAX + 1)];
  for (;;) {
    auto [ec, n] = co_await events.async_read_some(asio::buffer(buf), nothrow);
    if (ec) co_return;
    std::vector<std::string> names = config_names(config_path_);  // (links may have changed since)
    std::error_code fec;
    const std::string dir = std::filesystem::absolute(config_path_, fec).parent_path().string();
    bool concerned = events_name_config({buf, n}, names, dir);
    // Let a burst of events (write, rename, symlink swap) settle into one re-read.
    for (;;) {
      settle.expires_after(std::chrono::milliseconds(50));
      co_await settle.async_wait(nothrow);
      std::size_t more = 0;
      events.non_blocking(true);  // drain what is queued without blocking
      boost::system::error_code rec;
      more = events.read_some(asio::buffer(buf), rec);
      if (rec || more == 0) break;
      concerned = concerned || events_name_config({buf, more}, names, dir);
    }
    if (draining_ || !concerned) continue;
    std::string why = "file change";  // named: see server::on_each_worker
    co_await reload(why, true);
  }
}

asio::awaitable<void> runtime::reload(std::string why, bool only_if_changed) {
  // Nothing is reloaded once a drain began (checked in the loop below): a
  // reload could open listeners again, which nothing would close.
  if (reloading_) {  // one at a time; a request during one runs again after it (forced if any was)
    reload_again_ = true;
    reload_again_forced_ = reload_again_forced_ || !only_if_changed;
    co_return;
  }
  reloading_ = true;
  struct done_flag {
    bool& f;
    ~done_flag() { f = false; }
  } done{reloading_};
  for (;;) {
    if (draining_) {  // (also one asked for during the one before, when a drain began meanwhile)
      log::warn("reload ({}): draining; the config is not reloaded", why);
      break;
    }
    if (reload_again_ && reload_again_forced_) only_if_changed = false;
    reload_again_ = reload_again_forced_ = false;
    std::string message;
    auto text = read_file(config_path_, message);
    if (!text) {
      ++reloads_error_;
      log::error("reload ({}): {}; keeping generation {}", why, message, generation_);
    } else if (only_if_changed && *text == config_text_) {
      log::debug("reload ({}): {} unchanged", why, config_path_);
    } else {
      std::vector<config_error> errors;
      auto next = parse_proxy_config(*text, config_path_, errors);
      if (!next) {
        ++reloads_error_;
        for (const auto& e : errors) log::error("{}", e.to_string());
        log::error("reload ({}): {} error{} in {}; config refused, keeping generation {}", why, errors.size(),
                   errors.size() == 1 ? "" : "s", config_path_, generation_);
      } else {
        co_await apply_config(std::move(*next), std::move(*text), why);
      }
    }
    if (!reload_again_) break;
  }
}

asio::awaitable<void> runtime::apply_config(proxy_config next, std::string text, const std::string& why) {
  if (next.admin.address != file_config_.admin.address)
    log::warn("reload: admin.address changed to {}; it takes effect at the next start", next.admin.address.to_string());
  next.admin.address = file_config_.admin.address;
  // The new config was checked against its own address; the one in effect may need a token it dropped.
  if (next.admin.token.empty() && !file_config_.admin.token.empty()) {
    boost::system::error_code aec;
    const auto address = asio::ip::make_address(next.admin.address.host, aec);
    if (aec || !address.is_loopback()) {
      ++reloads_error_;
      log::error(
          "reload ({}): admin.token_file is required while admin.address ({}) is not loopback (an address "
          "change takes effect at the next start); config refused, keeping generation {}",
          why, next.admin.address.to_string(), generation_);
      co_return;
    }
  }
  // New names are looked up first, off this thread (the admin API, health
  // checks and signals go on meanwhile); what follows does not suspend until
  // the table is built.
  const lookup_map lookups = co_await look_up_new_names(next);
  if (draining_) {
    log::warn("reload ({}): draining; the config is not reloaded", why);
    co_return;
  }
  // Bind what is new before changing anything: a port in use refuses the reload.
  std::vector<server::prepared_listener> opened;
  std::vector<std::uint64_t> to_close;
  overrides_map overrides = overrides_;
  std::vector<std::string> dropped;
  proxy_config effective = apply_overrides(next, overrides, dropped);
  std::string error;
  table_inputs in = inputs();
  in.lookups = &lookups;
  auto table = build_route_table(effective, generation_ + 1, in, error);
  if (!table) {
    ++reloads_error_;
    log::error("reload ({}): {}; config refused, keeping generation {}", why, error, generation_);
    co_return;
  }
  try {
    for (const auto& l : table->listeners) {
      auto it = listeners_.find(l.name);
      if (it != listeners_.end() && it->second.address == l.address) continue;
      // (a listener renamed, moved to or from a wildcard host, or one just opened on another host)
      std::vector<host_port> held;
      for (const auto& [name, current] : listeners_) held.push_back({current.address.host, current.port});
      for (const auto& o : opened) held.push_back({o.address.host, port_of(o.bound)});
      opened.push_back(server_->prepare_listener(l, !held_by_us(held, l.address)));
    }
  } catch (const std::exception& e) {
    ++reloads_error_;
    log::error("reload ({}): {}; config refused, keeping generation {}", why, e.what(), generation_);
    co_return;
  }
  for (const auto& name : dropped)
    log::warn("reload: overrides of route {} dropped: the route or a cluster it names is gone", name);
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    bool keep = false;
    for (const auto& l : table->listeners) keep = keep || (l.name == it->first && l.address == it->second.address);
    if (keep) {
      ++it;
    } else {
      to_close.push_back(it->second.id);
      it = listeners_.erase(it);
    }
  }
  tls_->retain(effective);
  file_config_ = std::move(next);
  config_text_ = std::move(text);
  overrides_ = std::move(overrides);
  ++generation_;
  ++reloads_ok_;
  co_await publish(std::move(effective), std::move(table));
  if (draining_) {  // began while the table went to the workers: the listeners in effect stay until the drain
    log::info("reload ({}): {} loaded, generation {}; draining: its listeners are not opened", why, config_path_,
              generation_);
    co_return;
  }
  for (auto& p : opened) {
    std::string name = p.name, bound = p.bound;
    host_port address = p.address;
    std::uint64_t id = co_await server_->start_listener(std::move(p));
    listeners_[name] = {address, id, port_of(bound)};
    log::info("listener {} listening on {} ({} workers)", name, bound, server_->size());
  }
  for (auto id : to_close) co_await server_->close_listener(id);
  log::info("reload ({}): {} loaded, generation {}", why, config_path_, generation_);
}

asio::awaitable<void> runtime::publish(proxy_config effective, std::shared_ptr<const route_table> table) {
  // A route's policy generation moves only when its effective policy changed.
  for (const auto& l : effective.listeners) {
    for (const auto& r : l.routes) {
      const route_config* old = find_route(effective_, r.name);
      auto& gen = policy_generation_[r.name];
      if (!old || !same_policy(*old, r)) ++gen;
    }
  }
  effective_ = std::move(effective);
  table_ = table;
  // Posted to every worker in order; a later publish always lands after this one.
  const server::worker_task install = [table](worker& w) { w.install(table); };
  co_await server_->on_each_worker(install);
  start_health_checks();
}

table_inputs runtime::inputs() { return table_inputs{table_.get(), &health_, nullptr, tls_.get(), &guards_}; }

namespace {
// A guard as the admin API shows it: its cluster, whether it tripped, and what the windows held then.
json::object guard_state_json(const guard_state& g) {
  const guard_state::view v = g.read();
  json::object o{{"cluster", g.cluster()}, {"tripped", v.tripped}};
  if (v.tripped) {
    o["since"] = format_utc_ms(v.since_unix_ms);
    o["error_percent"] = percent_json(v.error_per_10k);
    o["requests"] = v.requests;
  }
  return o;
}
}  // namespace

json::array runtime::guards_json() const {
  json::array out;
  for (const auto& l : table_->listeners)
    for (const auto& r : l.routes)
      if (r.guard) {
        json::object o = guard_state_json(*r.guard->state);
        o["route"] = r.name;
        out.push_back(std::move(o));
      }
  return out;
}

json::value runtime::guard_json(std::string_view route) const {
  for (const auto& l : table_->listeners)
    for (const auto& r : l.routes)
      if (r.name == route && r.guard) return guard_state_json(*r.guard->state);
  return nullptr;
}

// Certificates and keys are re-read every second: cert-manager and Secret
// volumes rotate them in place (or by the `..data` symlink swap), in
// directories other than the config's. A pair that changed and loads
// publishes a new table (new connections get it, open ones keep theirs); one
// that does not load is logged and the old pair stays.
asio::awaitable<void> runtime::watch_certificates() {
  asio::steady_timer timer(ctx_);
  for (;;) {
    timer.expires_after(std::chrono::seconds(1));
    auto [ec] = co_await timer.async_wait(nothrow);
    if (ec || draining_) co_return;
    auto result = tls_->refresh();
    tls_reloads_error_ += result.refused;
    if (result.reloaded == 0) continue;
    tls_reloads_ok_ += result.reloaded;
    std::string why = "certificate change";  // named: see server::on_each_worker
    co_await rebuild(nullptr, why);
  }
}

asio::awaitable<void> runtime::rebuild(const resolved_map* resolved, std::string_view why) {
  std::string error;
  table_inputs in = inputs();
  in.resolved = resolved;
  auto table = build_route_table(effective_, generation_, in, error);
  if (!table) {
    log::error("{}: {}", why, error);
    co_return;
  }
  proxy_config effective = effective_;
  co_await publish(std::move(effective), std::move(table));
}

json::object runtime::config_json() const {
  json::object o = vane::proxy::config_json(effective_, generation_);
  o["reloads"] = json::object{{"ok", reloads_ok_}, {"error", reloads_error_}};
  return o;
}

std::string runtime::metrics_text() const {
  std::string out;
  out.reserve(std::size_t{64} * 1024);
  server_->stats().render_prometheus(out);
  metrics::prometheus_writer w(out);
  w.family("vane_route_weight", "gauge", "Live split weight of a cluster in a route (file and traffic overrides).");
  for (const auto& l : effective_.listeners) {
    for (const auto& r : l.routes) {
      for (const auto& s : r.split) {
        metrics::label labels[] = {{"route", r.name}, {"cluster", s.cluster}};
        w.sample("vane_route_weight", labels, std::uint64_t{s.weight});
      }
    }
  }
  w.family("vane_cluster_endpoints_healthy", "gauge", "Endpoints of the cluster that may take traffic.");
  for (const auto& c : table_->clusters) {
    std::uint64_t healthy = 0;
    for (std::size_t i = 0; i < c.endpoints.size(); ++i) healthy += !c.healthy || (*c.healthy)[i];
    metrics::label labels[] = {{"cluster", c.name}};
    w.sample("vane_cluster_endpoints_healthy", labels, healthy);
  }
  w.family("vane_config_generation", "gauge", "Config file loads that took effect.");
  w.sample("vane_config_generation", {}, generation_);
  w.family("vane_config_reloads_total", "counter", "Config reloads by result.");
  metrics::label ok[] = {{"result", "ok"}};
  metrics::label error[] = {{"result", "error"}};
  w.sample("vane_config_reloads_total", ok, reloads_ok_);
  w.sample("vane_config_reloads_total", error, reloads_error_);
  w.family("vane_tls_certificate_reloads_total", "counter",
           "Changed certificate files by result: loaded, or refused (the old ones stay).");
  w.sample("vane_tls_certificate_reloads_total", ok, tls_reloads_ok_);
  w.sample("vane_tls_certificate_reloads_total", error, tls_reloads_error_);
  if (access_log_) {
    w.family("vane_access_log_dropped_total", "counter",
             "Access log lines dropped: the queue was full, or a write failed.");
    w.sample("vane_access_log_dropped_total", {}, access_log_->dropped());
  }
  render_process_metrics(out, start_time_);
  return out;
}

json::object runtime::latency_json() const {
  return json::object{{"process_start_time", start_time_},
                      {"unit", "microseconds"},
                      {"generation", generation_},
                      {"routes", server_->stats().latency_json()},
                      {"guards", guards_json()}};
}

asio::awaitable<json::object> runtime::clusters_json() {
  std::vector<std::vector<pool_stats>> per_worker(server_->size());
  const server::worker_task collect = [&](worker& w) { per_worker[w.id()] = w.stats(); };
  co_await server_->on_each_worker(collect);
  json::array clusters;
  for (const auto& c : table_->clusters) {
    std::size_t active = 0, idle = 0;
    std::uint64_t created = 0;
    for (const auto& stats : per_worker) {
      for (const auto& s : stats) {
        if (s.cluster != c.name) continue;
        active += s.active;
        idle += s.idle;
        created += s.created;
      }
    }
    json::array endpoints;
    const cluster_config* cfg = effective_.find_cluster(c.name);
    std::size_t healthy_count = 0;
    for (std::size_t i = 0; i < c.endpoints.size(); ++i) {
      bool healthy = !c.healthy || (*c.healthy)[i];
      healthy_count += healthy;
      endpoints.push_back(json::object{{"address", endpoint_key(c.endpoints[i])}, {"healthy", healthy}});
    }
    json::array configured;
    if (cfg)
      for (const auto& e : cfg->endpoints) configured.push_back(json::string(e.to_string()));
    clusters.push_back(json::object{{"name", c.name},
                                    {"configured_endpoints", std::move(configured)},
                                    {"endpoints", std::move(endpoints)},
                                    {"healthy_endpoints", healthy_count},
                                    {"health_checked", cfg && cfg->health_check.has_value()},
                                    {"pool", json::object{{"active", active}, {"idle", idle}, {"created", created}}}});
  }
  co_return json::object{{"generation", generation_}, {"clusters", std::move(clusters)}};
}

std::optional<json::object> runtime::route_json(std::string_view name) const {
  const route_config* r = find_route(effective_, name);
  if (!r) return std::nullopt;
  auto it = overrides_.find(name);
  auto gen = policy_generation_.find(name);
  json::object o = route_policy_json(*r, it == overrides_.end() ? nullptr : &it->second,
                                     gen == policy_generation_.end() ? 0 : gen->second);
  if (json::value g = guard_json(name); !g.is_null()) {
    json::object& shown = o["guard"].as_object();  // the config, with the state beside it
    for (const auto& [k, v] : g.as_object()) shown[k] = v;
  }
  return o;
}

asio::awaitable<admin_reply> runtime::put_traffic(std::string_view name, std::string_view body) {
  if (!find_route(effective_, name))
    co_return admin_reply{404, {{"error", "no route named '" + std::string(name) + "'"}}};
  auto it = overrides_.find(name);
  route_overrides current = it == overrides_.end() ? route_overrides{} : it->second;
  auto update = parse_traffic_update(body, file_config_, current);
  if (!update.overrides) co_return admin_reply{400, {{"error", update.error}}};
  {
    // The affinity the route would have, on the split it would have (apply_overrides
    // would silently turn it off; a PUT is refused instead).
    const route_config& file_route = *find_route(effective_, name);
    const auto& o = *update.overrides;
    const auto& affinity = o.session_affinity ? *o.session_affinity : file_route.session_affinity;
    const auto& split = o.split ? *o.split : file_route.split;
    std::string error;
    if (affinity && !compile_session_affinity(name, *affinity, split, error))
      co_return admin_reply{400, {{"error", error}}};
    const auto& guard = o.guard ? *o.guard : file_route.guard;
    if (auto e = guard ? check_guarded_cluster(guard->cluster, split) : std::nullopt)
      co_return admin_reply{400, {{"error", "guard: " + *e}}};
    const auto& fallback = o.fallback ? *o.fallback : file_route.fallback;
    if (auto e = fallback ? check_guarded_cluster(fallback->from, split) : std::nullopt)
      co_return admin_reply{400, {{"error", "fallback: " + *e}}};
  }
  overrides_map next = overrides_;
  next[std::string(name)] = *update.overrides;
  admin_reply reply = co_await commit_overrides(std::move(next), name);
  co_return reply;
}

asio::awaitable<admin_reply> runtime::commit_overrides(overrides_map next, std::string_view name) {
  std::optional<route_overrides> committed;  // what the route's overrides are once this is done
  if (auto it = next.find(name); it != next.end()) committed = it->second;
  if (next != overrides_) {
    std::vector<std::string> dropped;
    proxy_config effective = apply_overrides(file_config_, next, dropped);
    std::string error;
    auto table = build_route_table(effective, generation_, inputs(), error);
    if (!table) co_return admin_reply{503, {{"error", error}}};
    overrides_ = std::move(next);
    const std::uint64_t generation_before = policy_generation_[std::string(name)];
    co_await publish(std::move(effective), std::move(table));
    // A PUT or DELETE that installs a new policy generation resets a tripped guard (a reload does not).
    if (policy_generation_[std::string(name)] != generation_before) guards_.reset(name);
    log::info("route {}: traffic overrides now {}, policy generation {}", name,
              overrides_.count(name) ? "set" : "removed", policy_generation_[std::string(name)]);
  }
  // A reload while the policy was published may have removed the route, and with it the overrides set.
  std::optional<json::object> now = route_json(name);
  const auto kept = overrides_.find(name);
  const bool still = committed ? kept != overrides_.end() && kept->second == *committed : kept == overrides_.end();
  if (!now || !still)
    co_return admin_reply{409, {{"error", "route '" + std::string(name) + "' was changed by a reload meanwhile"}}};
  co_return admin_reply{200, std::move(*now)};
}

asio::awaitable<admin_reply> runtime::delete_traffic(std::string_view name) {
  if (!find_route(effective_, name))
    co_return admin_reply{404, {{"error", "no route named '" + std::string(name) + "'"}}};
  overrides_map next = overrides_;
  if (auto it = next.find(name); it != next.end()) next.erase(it);
  admin_reply reply = co_await commit_overrides(std::move(next), name);
  co_return reply;
}

void runtime::start_drain(std::string_view why) {
  if (draining_) return;
  draining_ = true;
  ready_ = false;
  log::info("draining ({}): /ready is 503; accepting for {} more, then in-flight requests get {} to finish", why,
            format_duration(file_config_.drain_delay), format_duration(file_config_.drain_timeout));
  asio::co_spawn(ctx_, drain(), asio::detached);
}

asio::awaitable<void> runtime::drain() {
  const server::worker_task mark = [](worker& w) { w.set_draining(); };
  co_await server_->on_each_worker(mark);
  asio::steady_timer timer(ctx_);
  timer.expires_after(file_config_.drain_delay);
  co_await timer.async_wait(nothrow);
  const server::worker_task stop_accepting = [](worker& w) {
    w.close_all_listeners();
    w.close_idle_connections();
  };
  co_await server_->on_each_worker(stop_accepting);
  log::info("draining: stopped accepting; {} connections still open", server_->active_connections());
  auto deadline = clock::now() + file_config_.drain_timeout;
  // Connections close themselves after their response (Connection: close); poll their count.
  while (server_->active_connections() > 0 && clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(nothrow);
  }
  auto left = server_->active_connections();
  if (left > 0)
    log::warn("draining: drain_timeout reached with {} connections open; closing them", left);
  else
    log::info("draining: all connections closed");
  ctx_.stop();
}

}  // namespace vane::proxy
