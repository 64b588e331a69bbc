#include "control/controller.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <cmath>
#include <random>
#include <set>

#include "common/address.hpp"
#include "common/listen.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "control/http_client.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

std::string timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A duration in ms written as Go writes time.Duration (Flagger's messages): 1.515s, 500ms.
std::string go_duration(double ms) {
  if (ms >= 1000) return fmt::format("{}s", std::round(ms) / 1000.0);
  return fmt::format("{}ms", std::round(ms * 1000) / 1000.0);
}

std::string number(double v) { return fmt::format("{}", v); }

bool iterations_strategy(const canary_spec& s) { return s.analysis.iterations > 0 && s.analysis.step_weight == 0 && s.analysis.step_weights.empty(); }

std::uint32_t max_weight(const canary_spec& s) {
  if (s.analysis.step_weight == 0 && !s.analysis.step_weights.empty()) return s.analysis.step_weights.back().weight;
  return s.analysis.max_weight;
}

bool mirroring(const canary_spec& s, const run_state& st) {
  return s.analysis.mirror && st.phase == "Progressing" && (iterations_strategy(s) || st.weight == 0);
}

bool run_active(const run_state& st) {
  return st.phase == "Waiting" || st.phase == "Progressing" || st.phase == "WaitingPromotion" ||
         st.phase == "Promoting" || st.phase == "Finalising";
}

std::string new_affinity_value() {
  static std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

// Runs every item concurrently and resumes when all are done.
template <class F>
asio::awaitable<void> for_all(asio::any_io_executor ex, std::size_t n, F f) {
  if (n == 0) co_return;
  auto remaining = std::make_shared<std::size_t>(n);
  auto done = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
  for (std::size_t i = 0; i < n; ++i) {
    auto task = [f, i, remaining, done]() -> asio::awaitable<void> {
      co_await f(i);
      if (--*remaining == 0) done->cancel();
    };
    asio::co_spawn(ex, std::move(task), asio::detached);
  }
  co_await done->async_wait(nothrow);
}

std::string render_template(const std::string& query, const std::map<std::string, std::string>& vars) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    std::size_t open = query.find("{{", pos);
    if (open == std::string::npos) break;
    std::size_t close = query.find("}}", open);
    if (close == std::string::npos) break;
    std::string key = query.substr(open + 2, close - open - 2);
    key.erase(0, key.find_first_not_of(' '));
    key.erase(key.find_last_not_of(' ') + 1);
    out += query.substr(pos, open - pos);
    auto it = vars.find(key);
    out += it == vars.end() ? query.substr(open, close + 2 - open) : it->second;
    pos = close + 2;
  }
  out += query.substr(pos);
  return out;
}

std::string percent_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

controller::controller(controller_options options) : options_(std::move(options)) {}
controller::~controller() = default;

void controller::start() {
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  load_state();
  load_documents(true);
  auto hp = parse_host_port(options_.listen);
  if (!hp) throw std::runtime_error("--listen: '" + options_.listen + "' is not HOST:PORT");
  boost::system::error_code ec;
  tcp::endpoint ep(asio::ip::make_address(hp->host, ec), hp->port);
  if (ec) throw std::runtime_error("--listen: '" + hp->host + "' is not an IP address");
  acceptor_.emplace(listen_on(ctx_.get_executor(), ep, false, ec));
  if (ec) throw std::runtime_error("cannot listen on " + options_.listen + ": " + ec.message());
  auto bound = acceptor_->local_endpoint();
  log::info("vane-control listening on {}", host_port{bound.address().to_string(), bound.port()}.to_string());
  ready_ = true;
}

int controller::run() {
  asio::co_spawn(ctx_, serve_api(), asio::detached);
  asio::co_spawn(ctx_, watch_loop(), asio::detached);
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::info("signal {}: stopping", sig);
    save_state();
    ctx_.stop();
  });
  ctx_.run();
  return 0;
}

// --- documents ---

void controller::load_documents(bool initial) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> texts;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options_.canaries_dir, ec)) {
    auto ext = entry.path().extension();
    if (ext != ".yaml" && ext != ".yml") continue;
    std::string message;
    if (auto text = read_file(entry.path().string(), message)) texts[entry.path().string()] = *text;
  }
  if (ec && initial) throw std::runtime_error("--canaries " + options_.canaries_dir + ": " + ec.message());
  if (!initial && texts == file_texts_) return;
  file_texts_ = texts;
  documents next;
  for (const auto& [path, text] : texts) parse_documents(text, path, next);
  for (const auto& e : next.errors) log::error("{}", e.to_string());
  for (const auto& i : next.ignored) log::info("{}", i);
  docs_ = next;
  std::set<std::string> seen;
  for (const auto& spec : docs_.canaries) {
    std::string id = spec.id();
    if (!seen.insert(id).second) {
      log::error("{}:{}: Canary {} is defined twice; the first one is used", spec.file, spec.line, id);
      continue;
    }
    auto it = canaries_.find(id);
    if (it == canaries_.end()) {
      auto c = std::make_unique<canary>();
      c->spec = spec;
      if (auto s = saved_.find(id); s != saved_.end()) c->state = s->second;
      c->wake = std::make_unique<asio::steady_timer>(ctx_);
      c->epoch = next_epoch_++;
      log::info("canary {} loaded from {} ({}{})", id, spec.file, c->state.phase,
                c->state.revision.empty() ? "" : ", revision " + c->state.revision);
      auto& ref = *c;
      canaries_[id] = std::move(c);
      asio::co_spawn(ctx_, canary_loop(id, ref.epoch), asio::detached);
      asio::co_spawn(ctx_, abort_loop(id, ref.epoch), asio::detached);
    } else {
      canary& c = *it->second;
      c.spec = spec;
      if (c.removed) {
        c.removed = false;
        c.epoch = next_epoch_++;
        asio::co_spawn(ctx_, canary_loop(id, c.epoch), asio::detached);
        asio::co_spawn(ctx_, abort_loop(id, c.epoch), asio::detached);
      }
      c.wake->cancel();  // look at the new spec now
    }
  }
  for (auto& [id, c] : canaries_) {
    if (seen.count(id) || c->removed) continue;
    c->removed = true;
    c->epoch = next_epoch_++;  // its loops end
    c->wake->cancel();
    log::info("canary {} removed: its document is gone", id);
  }
}

asio::awaitable<void> controller::watch_loop() {
  asio::steady_timer timer(ctx_);
  for (;;) {
    // Polled: a ConfigMap's ..data swap, editors' renames and plain writes all show as a new text.
    timer.expires_after(std::chrono::seconds(1));
    auto [ec] = co_await timer.async_wait(nothrow);
    if (ec) co_return;
    load_documents(false);
  }
}

// --- the analysis ---

void controller::event(canary& c, const std::string& message) {
  std::string line = timestamp() + " " + message;
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
  c.events.push_back(line);
  while (c.events.size() > 50) c.events.pop_front();
  std::vector<webhook_spec> hooks;
  for (const auto& h : c.spec.analysis.webhooks)
    if (h.type == "event") hooks.push_back(h);
  if (hooks.empty()) return;
  json::object payload{{"name", c.spec.name},
                       {"namespace", c.spec.ns},
                       {"phase", c.state.phase},
                       {"checksum", c.state.revision},
                       {"metadata", json::object{{"eventMessage", message}, {"eventType", "Normal"}}}};
  std::string body = json::serialize(payload);
  auto ex = ctx_.get_executor();
  for (const auto& h : hooks) {
    auto url = parse_http_url(h.url);
    if (!url) continue;
    auto send = [ex, u = *url, body, timeout = h.timeout]() -> asio::awaitable<void> {
      std::string method = "POST";
      std::vector<std::pair<std::string, std::string>> headers;
      co_await http_call(ex, u, method, u.target, body, timeout, headers);
    };
    asio::co_spawn(ex, std::move(send), asio::detached);
  }
}

void controller::set_phase(canary& c, const std::string& phase) {
  if (c.state.phase == phase) return;
  c.state.phase = phase;
  c.state.last_transition = timestamp();
  save_state();
}

void controller::start_run(canary& c, const std::string& revision) {
  bool restart = run_active(c.state);
  c.state.revision = revision;
  c.state.pending_revision.clear();
  c.state.weight = 0;
  c.state.failed_checks = 0;
  c.state.iterations = 0;
  c.state.steps = 0;
  c.state.pre_rollout_done = false;
  c.state.promote_confirmed = false;
  c.state.primary_promoted = false;
  c.state.affinity_value = new_affinity_value();
  c.history.clear();
  c.abort_last.clear();
  event(c, fmt::format("New revision detected! {} {}", restart ? "Restarting analysis for" : "Scaling up", c.spec.id()));
  set_phase(c, "Waiting");
}

json::object controller::desired_traffic(const canary& c) const {
  const auto& s = c.spec;
  const auto& st = c.state;
  json::object t;
  t["split"] = json::array{json::object{{"cluster", s.primary}, {"weight", 100 - st.weight}},
                           json::object{{"cluster", s.canary}, {"weight", st.weight}}};
  bool analysing = st.phase == "Progressing" || st.phase == "WaitingPromotion";
  if (analysing && iterations_strategy(s) && !s.analysis.match.empty()) {
    t["rules"] = json::array{json::object{{"match", s.analysis.match}, {"cluster", s.canary}}};
  } else if (analysing && iterations_strategy(s) && !s.analysis.mirror) {
    // Blue/green: no live traffic, but tests and load through the proxies reach the canary and are measured.
    json::array match{json::object{{"headers", json::object{{"x-vane-canary", json::object{{"exact", "always"}}}}}}};
    t["rules"] = json::array{json::object{{"match", std::move(match)}, {"cluster", s.canary}}};
  } else {
    t["rules"] = nullptr;
  }
  if (mirroring(s, st))
    t["mirror"] = json::object{{"cluster", s.canary}, {"percent", s.analysis.mirror_weight}};
  else
    t["mirror"] = nullptr;
  if (s.analysis.affinity_cookie && run_active(st)) {
    json::object a{{"cookie", *s.analysis.affinity_cookie},
                   {"max_age", fmt::format("{}s", std::chrono::duration_cast<std::chrono::seconds>(
                                                      s.analysis.affinity_max_age)
                                                      .count())},
                   {"value", st.affinity_value}};
    if (!s.analysis.affinity_primary_cookie.empty()) a["primary_cookie"] = s.analysis.affinity_primary_cookie;
    t["session_affinity"] = std::move(a);
  } else {
    t["session_affinity"] = nullptr;
  }
  return t;
}

asio::awaitable<std::vector<std::string>> controller::proxy_urls(const canary& c) {
  std::vector<std::string> out;
  for (const auto& p : c.spec.proxies) {
    if (!p.starts_with("dns:")) {
      out.push_back(p);
      continue;
    }
    // dns:NAME:PORT: every address of the name (a headless Service's pods).
    std::string rest = p.substr(4);
    auto colon = rest.rfind(':');
    std::string name = rest.substr(0, colon), port = colon == std::string::npos ? "9901" : rest.substr(colon + 1);
    tcp::resolver resolver(ctx_);
    auto [ec, results] = co_await resolver.async_resolve(name, port, nothrow);
    if (ec) {
      log::warn("{}: cannot resolve {}: {}", c.spec.id(), name, ec.message());
      continue;
    }
    for (const auto& r : results) {
      auto ep = r.endpoint();
      out.push_back(fmt::format("http://{}:{}", ep.address().is_v6() ? "[" + ep.address().to_string() + "]"
                                                                       : ep.address().to_string(),
                                ep.port()));
    }
  }
  co_return out;
}

asio::awaitable<bool> controller::push_traffic(canary& c) {
  std::vector<std::string> urls = co_await proxy_urls(c);
  std::string body = json::serialize(desired_traffic(c));
  std::string target = "/routes/" + c.spec.route + "/traffic";
  auto ok = std::make_shared<bool>(!urls.empty());
  auto token = options_.proxy_token;
  auto ex = ctx_.get_executor();
  std::string id = c.spec.id();
  auto put = [ex, urls, body, target, ok, token, id](std::size_t i) -> asio::awaitable<void> {
    auto url = parse_http_url(urls[i]);
    if (!url) co_return;
    std::string method = "PUT";
    std::vector<std::pair<std::string, std::string>> headers;
    if (!token.empty()) headers.emplace_back("authorization", "Bearer " + token);
    duration timeout = std::chrono::seconds(5);
    http_result r = co_await http_call(ex, *url, method, target, body, timeout, headers);
    if (r.status != 200) {
      *ok = false;
      log::warn("{}: proxy {}: PUT {} -> {}", id, urls[i], target,
                r.status ? fmt::format("{} {}", r.status, r.body) : r.error);
    }
  };
  co_await for_all(ex, urls.size(), put);
  co_return *ok;
}

asio::awaitable<void> controller::read_stats(canary& c) {
  std::vector<std::string> urls = co_await proxy_urls(c);
  auto results = std::make_shared<std::vector<http_result>>(urls.size());
  auto token = options_.proxy_token;
  auto ex = ctx_.get_executor();
  auto get = [ex, urls, results, token](std::size_t i) -> asio::awaitable<void> {
    auto url = parse_http_url(urls[i]);
    if (!url) co_return;
    std::string method = "GET", target = "/stats/latency", body;
    std::vector<std::pair<std::string, std::string>> headers;
    if (!token.empty()) headers.emplace_back("authorization", "Bearer " + token);
    duration timeout = std::chrono::seconds(5);
    (*results)[i] = co_await http_call(ex, *url, method, target, body, timeout, headers);
  };
  co_await for_all(ex, urls.size(), get);
  c.unreachable.clear();
  steady::duration keep = std::chrono::minutes(1);
  for (const auto& m : c.spec.analysis.metrics) keep = std::max<steady::duration>(keep, m.interval);
  auto now = steady::now();
  for (std::size_t i = 0; i < urls.size(); ++i) {
    const auto& r = (*results)[i];
    boost::system::error_code ec;
    json::value v = r.status == 200 ? json::parse(r.body, ec) : json::value();
    if (r.status != 200 || ec || !v.is_object()) {
      c.unreachable.push_back(urls[i]);
      log::warn("{}: proxy {} unreachable: {}", c.spec.id(), urls[i],
                r.status ? fmt::format("GET /stats/latency -> {}", r.status) : r.error);
      continue;
    }
    c.history[urls[i]].add(snapshot_from_stats(v.as_object(), c.spec.route, now), keep + std::chrono::seconds(1));
  }
}

asio::awaitable<std::optional<double>> controller::prometheus_value(canary& c, const metric_spec& m) {
  std::string address = m.provider_address, query = m.query;
  if (!m.template_name.empty()) {
    for (const auto& t : docs_.templates) {
      if (t.name == m.template_name && t.ns == m.template_namespace) {
        address = t.provider_address;
        query = t.query;
      }
    }
    if (query.empty()) {
      event(c, fmt::format("Metric template {}.{} not found", m.template_name, m.template_namespace));
      co_return std::nullopt;
    }
  }
  std::map<std::string, std::string> vars{{"name", c.spec.name},          {"namespace", c.spec.ns},
                                          {"target", c.spec.target},      {"interval", format_duration(m.interval)},
                                          {"route", c.spec.route},        {"primary", c.spec.primary},
                                          {"canary", c.spec.canary}};
  for (const auto& [k, v] : m.template_variables) vars["variables." + k] = v;
  std::string rendered = render_template(query, vars);
  auto url = parse_http_url(address);
  if (!url) co_return std::nullopt;
  std::string method = "GET", target = "/api/v1/query?query=" + percent_encode(rendered), body;
  std::vector<std::pair<std::string, std::string>> headers;
  duration timeout = std::chrono::seconds(10);
  http_result r = co_await http_call(ctx_.get_executor(), *url, method, target, body, timeout, headers);
  if (r.status != 200) {
    log::warn("{}: metric {}: prometheus {}: {}", c.spec.id(), m.name, address, r.status ? r.body : r.error);
    co_return std::nullopt;
  }
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec || !v.is_object()) co_return std::nullopt;
  const auto* data = v.as_object().if_contains("data");
  if (!data || !data->is_object()) co_return std::nullopt;
  const auto& result = data->as_object().at("result");
  const json::array* pair = nullptr;
  if (result.is_array() && !result.as_array().empty() && result.as_array()[0].is_object())
    pair = &result.as_array()[0].as_object().at("value").as_array();
  else if (result.is_array() && result.as_array().size() == 2)
    pair = &result.as_array();  // scalar
  if (!pair) co_return std::nullopt;
  double value = std::strtod(std::string((*pair)[1].as_string()).c_str(), nullptr);
  if (std::isnan(value)) co_return std::nullopt;
  co_return value;
}

asio::awaitable<bool> controller::analysis_passes(canary& c) {
  co_await read_stats(c);
  const std::string part = mirroring(c.spec, c.state) && c.state.weight == 0 ? "mirror" : "upstream";
  for (const auto& m : c.spec.analysis.metrics) {
    std::optional<double> value;
    bool inconclusive = false;
    std::string why;
    if (m.builtin()) {
      window canary_w, primary_w;
      for (auto& [url, h] : c.history) {
        if (auto w = h.over(m.interval, series_key(c.spec.canary, part))) canary_w.add(*w);
        if (auto w = h.over(m.interval, series_key(c.spec.primary, "upstream"))) primary_w.add(*w);
      }
      if (!c.unreachable.empty()) {
        inconclusive = true;  // its missing numbers must not count as zero errors
        why = fmt::format("{} proxies unreachable", c.unreachable.size());
      } else if (c.history.empty() || canary_w.inconclusive) {
        inconclusive = true;
        why = "first window";
      } else if (m.min_requests && canary_w.total < *m.min_requests) {
        inconclusive = true;
        why = fmt::format("{} requests < minRequests {}", canary_w.total, *m.min_requests);
      } else if (m.name == "request-success-rate") {
        value = success_rate(canary_w);
        if (value && m.relative_to_primary) {
          auto p = success_rate(primary_w);
          value = p ? std::optional<double>(*value - *p) : std::nullopt;
        }
      } else {
        value = p99_ms(canary_w);
        if (value && m.relative_to_primary) {
          auto p = p99_ms(primary_w);
          value = p && *p > 0 ? std::optional<double>(*value / *p) : std::nullopt;
        }
      }
    } else {
      value = co_await prometheus_value(c, m);
    }
    if (inconclusive) {
      event(c, fmt::format("Halt {} advancement {} inconclusive: {}", c.spec.id(), m.name, why));
      co_return false;
    }
    if (!value) {
      ++c.state.failed_checks;
      event(c, fmt::format("Halt advancement no values found for {} metric {} probably {} is not receiving traffic",
                           m.name, c.spec.id(), c.spec.id()));
      save_state();
      co_return false;
    }
    c.metric_values[m.name] = *value;
    auto describe = [&](double v) {
      if (m.name == "request-success-rate")
        return m.relative_to_primary ? fmt::format("{:.2f} points", v) : fmt::format("{:.2f}%", v);
      if (m.name == "request-duration") return m.relative_to_primary ? fmt::format("{:.2f}x", v) : go_duration(v);
      return fmt::format("{:.2f}", v);
    };
    auto bound = [&](double b) {
      if (m.name == "request-success-rate" && !m.relative_to_primary) return number(b) + "%";
      if (m.name == "request-duration" && !m.relative_to_primary) return go_duration(b);
      return number(b);
    };
    std::string label = m.name == "request-success-rate" ? "success rate"
                        : m.name == "request-duration"   ? "request duration"
                                                         : m.name;
    if (m.min && *value < *m.min) {
      ++c.state.failed_checks;
      event(c, fmt::format("Halt {} advancement {} {} < {}", c.spec.id(), label, describe(*value), bound(*m.min)));
      save_state();
      co_return false;
    }
    if (m.max && *value > *m.max) {
      ++c.state.failed_checks;
      event(c, fmt::format("Halt {} advancement {} {} > {}", c.spec.id(), label, describe(*value), bound(*m.max)));
      save_state();
      co_return false;
    }
  }
  co_return true;
}

asio::awaitable<bool> controller::run_hooks(canary& c, std::string type, bool log_passes) {
  bool all = true;
  for (const auto& h : c.spec.analysis.webhooks) {
    if (h.type != type) continue;
    auto url = parse_http_url(h.url);
    json::object md;
    for (const auto& [k, v] : h.metadata) md[k] = v;
    json::object payload{{"name", c.spec.name},
                         {"namespace", c.spec.ns},
                         {"phase", c.state.phase},
                         {"checksum", c.state.revision},
                         {"metadata", std::move(md)}};
    std::string method = "POST", target = url ? url->target : "/", body = json::serialize(payload);
    std::vector<std::pair<std::string, std::string>> headers;
    duration timeout = h.timeout;
    http_result r;
    if (url) r = co_await http_call(ctx_.get_executor(), *url, method, target, body, timeout, headers);
    bool pass = r.status >= 200 && r.status <= 202;
    std::string detail = r.status ? fmt::format("status {}", r.status) : r.error;
    if (type == "pre-rollout") {
      if (pass && log_passes) event(c, fmt::format("Pre-rollout check {} passed", h.name));
      if (!pass) event(c, fmt::format("Pre-rollout check {} failed: {}", h.name, detail));
    } else if (type == "post-rollout") {
      event(c, fmt::format("Post-rollout check {} {}", h.name, pass ? "passed" : "failed: " + detail));
    } else if (type == "rollout" && !pass) {
      event(c, fmt::format("Halt {} advancement external check {} failed: {}", c.spec.id(), h.name, detail));
    } else if (!pass && type != "rollback") {
      std::string message = fmt::format("Halt {} advancement waiting for approval {}", c.spec.id(), h.name);
      event(c, message);
      if (c.gate_alerted != type) {  // once per hold, not every tick
        c.gate_alerted = type;
        std::string severity = "warn";
        co_await notify(c, message, severity);
      }
    }
    if (pass && c.gate_alerted == type) c.gate_alerted.clear();
    all = all && pass;
    if (type == "rollback" && pass) co_return true;  // a 2xx from a rollback hook triggers the rollback
  }
  co_return type == "rollback" ? false : all;
}

asio::awaitable<bool> controller::gate(canary& c, std::string type) {
  bool any = false;
  for (const auto& h : c.spec.analysis.webhooks) any = any || h.type == type;
  if (!any) co_return true;
  bool ok = co_await run_hooks(c, type, false);
  co_return ok;
}

asio::awaitable<void> controller::post_rollout(canary& c) {
  std::string type = "post-rollout";
  co_await run_hooks(c, type, true);
}

asio::awaitable<void> controller::notify(canary& c, std::string message, std::string severity) {
  static const std::map<std::string, int> rank{{"info", 0}, {"warn", 1}, {"error", 2}};
  for (const auto& a : c.spec.analysis.alerts) {
    if (rank.at(severity) < rank.at(a.severity)) continue;
    for (const auto& p : docs_.providers) {
      if (p.name != a.provider_name || p.ns != a.provider_namespace) continue;
      auto url = parse_http_url(p.address);
      if (!url) continue;
      // Each service's own JSON (as Flagger's notifiers send it).
      std::string text = fmt::format("{}: {}", c.spec.id(), message);
      std::string user = p.username.empty() ? "vane" : p.username;
      json::object payload;
      if (p.type == "msteams") {
        payload = {{"@type", "MessageCard"},
                   {"@context", "http://schema.org/extensions"},
                   {"themeColor", severity == "error" ? "FF0000" : "0076D7"},
                   {"summary", text},
                   {"sections", json::array{json::object{{"activityTitle", c.spec.id()}, {"text", message}}}}};
      } else if (p.type == "discord") {
        payload = {{"username", user}, {"content", text}};
      } else if (p.type == "generic") {
        payload = {{"name", c.spec.name}, {"namespace", c.spec.ns}, {"phase", c.state.phase},
                   {"revision", c.state.revision}, {"severity", severity}, {"message", message}};
      } else {  // slack, rocket and gchat take Slack's shape
        payload = {{"text", text}, {"username", user}};
        if (!p.channel.empty()) payload["channel"] = p.channel;
      }
      std::string method = "POST", target = url->target, body = json::serialize(payload);
      std::vector<std::pair<std::string, std::string>> headers;
      duration timeout = std::chrono::seconds(10);
      http_result r = co_await http_call(ctx_.get_executor(), *url, method, target, body, timeout, headers);
      if (r.status < 200 || r.status > 299)
        log::warn("{}: alert {} to {} failed: {}", c.spec.id(), a.name, p.address, r.status ? r.body : r.error);
    }
  }
}

asio::awaitable<void> controller::rollback(canary& c, std::string reason) {
  event(c, fmt::format("Rolling back {} {}", c.spec.id(), reason));
  c.state.weight = 0;
  set_phase(c, "Failed");
  co_await push_traffic(c);
  event(c, fmt::format("Canary failed! Scaling down {}", c.spec.id()));
  ++c.failures;
  save_state();
  std::string message = "Canary analysis failed: " + reason, severity = "error";
  co_await notify(c, message, severity);
  co_await post_rollout(c);
}

asio::awaitable<bool> controller::primary_healthy(canary& c) {
  std::vector<std::string> urls = co_await proxy_urls(c);
  if (urls.empty()) co_return false;
  for (const auto& u : urls) {
    auto url = parse_http_url(u);
    if (!url) co_return false;
    std::string method = "GET", target = "/clusters", body;
    std::vector<std::pair<std::string, std::string>> headers;
    if (!options_.proxy_token.empty()) headers.emplace_back("authorization", "Bearer " + options_.proxy_token);
    duration timeout = std::chrono::seconds(5);
    http_result r = co_await http_call(ctx_.get_executor(), *url, method, target, body, timeout, headers);
    boost::system::error_code ec;
    json::value v = r.status == 200 ? json::parse(r.body, ec) : json::value();
    if (r.status != 200 || ec || !v.is_object()) co_return false;
    bool healthy = false;
    for (const auto& cl : v.as_object().at("clusters").as_array())
      if (cl.at("name").as_string() == c.spec.primary) healthy = cl.at("healthy_endpoints").to_number<std::int64_t>() > 0;
    if (!healthy) co_return false;
  }
  co_return true;
}

asio::awaitable<bool> controller::run_promote(canary& c) {
  const promote_spec& p = *c.spec.promote;
  if (!p.url.empty()) {
    auto url = parse_http_url(p.url);
    if (!url) co_return false;
    json::object payload{{"name", c.spec.name}, {"namespace", c.spec.ns}, {"revision", c.state.revision},
                         {"primary", c.spec.primary}, {"canary", c.spec.canary}};
    std::string method = "POST", target = url->target, body = json::serialize(payload);
    std::vector<std::pair<std::string, std::string>> headers;
    duration timeout = p.timeout;
    http_result r = co_await http_call(ctx_.get_executor(), *url, method, target, body, timeout, headers);
    if (r.status < 200 || r.status > 299)
      event(c, fmt::format("Promotion of {} failed: {} {}", c.spec.id(), p.url, r.status ? std::to_string(r.status) : r.error));
    co_return r.status >= 200 && r.status <= 299;
  }
  // A command: run with VANE_CANARY, VANE_NAMESPACE, VANE_REVISION in its environment; exit 0 is success.
  pid_t pid = ::fork();
  if (pid < 0) co_return false;
  if (pid == 0) {
    ::setenv("VANE_CANARY", c.spec.name.c_str(), 1);
    ::setenv("VANE_NAMESPACE", c.spec.ns.c_str(), 1);
    ::setenv("VANE_REVISION", c.state.revision.c_str(), 1);
    std::vector<char*> argv;
    for (const auto& a : p.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  auto deadline = steady::now() + p.timeout;
  asio::steady_timer timer(ctx_);
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (steady::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      event(c, fmt::format("Promotion command of {} timed out after {}", c.spec.id(), format_duration(p.timeout)));
      co_return false;
    }
    timer.expires_after(std::chrono::milliseconds(50));  // polling a child without a SIGCHLD handler
    co_await timer.async_wait(nothrow);
  }
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok) event(c, fmt::format("Promotion command of {} failed (exit {})", c.spec.id(), WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  co_return ok;
}

asio::awaitable<void> controller::progressing_tick(canary& c) {
  auto& st = c.state;
  const auto& an = c.spec.analysis;
  if (st.failed_checks >= an.threshold) {
    std::string reason = fmt::format("failed checks threshold reached {}", st.failed_checks);
    co_await rollback(c, reason);
    co_return;
  }
  std::string rollback_type = "rollback";
  if (co_await run_hooks(c, rollback_type, false)) {
    std::string reason = "rollback webhook triggered";
    co_await rollback(c, reason);
    co_return;
  }
  if (!st.pre_rollout_done) {
    std::string type = "pre-rollout";
    if (!co_await run_hooks(c, type, true)) {
      ++st.failed_checks;
      save_state();
      co_return;
    }
    st.pre_rollout_done = true;
  }
  std::string rollout_type = "rollout";
  if (!co_await run_hooks(c, rollout_type, false)) {
    ++st.failed_checks;
    save_state();
    co_return;
  }
  bool analyse = st.weight > 0 || iterations_strategy(c.spec) || mirroring(c.spec, st);
  if (analyse) {
    bool passed = co_await analysis_passes(c);
    if (!passed) co_return;
  }
  if (iterations_strategy(c.spec)) {
    if (st.iterations < an.iterations) {
      ++st.iterations;
      event(c, fmt::format("Advance {} canary iteration {}/{}", c.spec.id(), st.iterations, an.iterations));
      save_state();
      co_return;
    }
    if (an.match.empty()) {
      st.weight = 100;
      event(c, an.mirror ? "Stop traffic mirroring and route all traffic to canary" : "Routing all traffic to canary");
    }
    set_phase(c, "WaitingPromotion");
    co_return;
  }
  std::uint32_t top = max_weight(c.spec);
  if (st.weight < top) {
    std::string type = "confirm-traffic-increase";
    if (!co_await gate(c, type)) co_return;
    if (an.step_weight > 0) st.weight = std::min(st.weight + an.step_weight, top);
    else st.weight = an.step_weights[std::min<std::size_t>(st.steps++, an.step_weights.size() - 1)].weight;
    event(c, fmt::format("Advance {} canary weight {}", c.spec.id(), st.weight));
    save_state();
    co_return;
  }
  set_phase(c, "WaitingPromotion");
}

asio::awaitable<void> controller::tick(canary& c) {
  auto& st = c.state;
  std::string wanted = !st.pending_revision.empty() ? st.pending_revision : c.spec.revision.value_or("");
  if (!wanted.empty() && wanted != st.revision) {
    start_run(c, wanted);
    std::string message = "New revision detected, starting canary analysis", severity = "info";
    co_await notify(c, message, severity);
  }

  if (st.phase == "Waiting") {
    std::string type = "confirm-rollout";
    if (co_await gate(c, type)) {
      if (c.spec.skip_analysis) {
        event(c, fmt::format("Skipping analysis for {}", c.spec.id()));
        st.promote_confirmed = true;
        set_phase(c, "WaitingPromotion");
      } else {
        event(c, fmt::format("Starting canary analysis for {}", c.spec.id()));
        set_phase(c, "Progressing");
      }
    }
  } else if (st.phase == "Progressing") {
    co_await progressing_tick(c);
  } else if (st.phase == "WaitingPromotion") {
    bool ok = true;
    if (!c.spec.skip_analysis) {
      if (st.failed_checks >= c.spec.analysis.threshold) {
        std::string reason = fmt::format("failed checks threshold reached {}", st.failed_checks);
        co_await rollback(c, reason);
        co_return;
      }
      ok = co_await analysis_passes(c);
    }
    std::string type = "confirm-promotion";
    bool gate_ok = st.promote_confirmed;
    if (!gate_ok) gate_ok = co_await gate(c, type);
    if (ok && gate_ok) {
      if (c.spec.promote) {
        st.primary_promoted = co_await run_promote(c);
        if (!st.primary_promoted) ++st.failed_checks;
      } else {
        st.primary_promoted = st.promote_confirmed;
        const std::string waiting = fmt::format("Waiting for vane-control promote {}", c.spec.name);
        if (!st.primary_promoted && (c.events.empty() || c.events.back().find(waiting) == std::string::npos))
          event(c, waiting + " (no promote command or url)");
      }
      if (st.primary_promoted) {
        event(c, fmt::format("Copying {} template spec to {}.{}", c.spec.id(), c.spec.primary, c.spec.ns));
        st.promoting_since = unix_now();
        set_phase(c, "Promoting");
      }
    }
  } else if (st.phase == "Promoting") {
    if (!co_await primary_healthy(c)) {
      auto timeout = c.spec.promote ? c.spec.promote->timeout : std::chrono::minutes(5);
      if (unix_now() - st.promoting_since > std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) {
        std::string reason = "primary not healthy on every proxy after promotion";
        co_await rollback(c, reason);
        co_return;
      }
    } else if (c.spec.analysis.step_weight_promotion > 0 && st.weight > c.spec.analysis.step_weight_promotion) {
      st.weight -= c.spec.analysis.step_weight_promotion;
      event(c, fmt::format("Advance {} primary weight {}", c.spec.id(), 100 - st.weight));
      save_state();
    } else {
      st.weight = 0;
      event(c, "Routing all traffic to primary");
      set_phase(c, "Finalising");
    }
  } else if (st.phase == "Finalising") {
    set_phase(c, "Succeeded");
    event(c, fmt::format("Promotion completed! Scaling down {}", c.spec.id()));
    ++c.successes;
    co_await push_traffic(c);
    std::string message = "Canary analysis completed successfully, promotion finished.", severity = "info";
    co_await notify(c, message, severity);
    co_await post_rollout(c);
    co_return;
  }
  co_await push_traffic(c);  // level-triggered: every tick, every proxy
}

asio::awaitable<void> controller::canary_loop(std::string id, std::uint64_t epoch) {
  for (;;) {
    auto it = canaries_.find(id);
    if (it == canaries_.end() || it->second->epoch != epoch) co_return;
    canary& c = *it->second;
    auto started = steady::now();
    co_await tick(c);
    tick_durations_.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - started).count()));
    if (c.epoch != epoch) co_return;
    duration interval = c.spec.analysis.interval;
    if (c.state.phase == "Progressing" && c.spec.analysis.step_weight == 0 && c.state.steps > 0 &&
        c.state.steps <= c.spec.analysis.step_weights.size())
      if (auto own = c.spec.analysis.step_weights[c.state.steps - 1].interval) interval = *own;
    c.wake->expires_after(interval);
    co_await c.wake->async_wait(nothrow);
  }
}

// vane's abort: every second, the canary's error share since the last read;
// at least minRequests and maxErrorRate % or more rolls back at once.
asio::awaitable<void> controller::abort_loop(std::string id, std::uint64_t epoch) {
  asio::steady_timer timer(ctx_);
  for (;;) {
    timer.expires_after(std::chrono::seconds(1));
    co_await timer.async_wait(nothrow);
    auto it = canaries_.find(id);
    if (it == canaries_.end() || it->second->epoch != epoch) co_return;
    canary& c = *it->second;
    if (!c.spec.analysis.abort_max_error_rate) continue;
    if (c.state.phase != "Progressing" && c.state.phase != "WaitingPromotion") {
      c.abort_last.clear();
      continue;
    }
    std::vector<std::string> urls = co_await proxy_urls(c);
    window w;
    for (const auto& u : urls) {
      auto url = parse_http_url(u);
      if (!url) continue;
      std::string method = "GET", target = "/stats/latency", body;
      std::vector<std::pair<std::string, std::string>> headers;
      if (!options_.proxy_token.empty()) headers.emplace_back("authorization", "Bearer " + options_.proxy_token);
      duration timeout = std::chrono::seconds(2);
      http_result r = co_await http_call(ctx_.get_executor(), *url, method, target, body, timeout, headers);
      boost::system::error_code ec;
      json::value v = r.status == 200 ? json::parse(r.body, ec) : json::value();
      if (r.status != 200 || ec || !v.is_object()) continue;
      auto snap = snapshot_from_stats(v.as_object(), c.spec.route, steady::now());
      auto last = c.abort_last.find(u);
      if (last != c.abort_last.end()) w.add(delta(&last->second, snap, series_key(c.spec.canary, "upstream")));
      c.abort_last[u] = std::move(snap);
    }
    if (c.epoch != epoch || (c.state.phase != "Progressing" && c.state.phase != "WaitingPromotion")) continue;
    if (w.total == 0 || w.total < c.spec.analysis.abort_min_requests) continue;
    double rate = 100.0 * static_cast<double>(w.errors) / static_cast<double>(w.total);
    if (rate >= *c.spec.analysis.abort_max_error_rate) {
      std::string reason = fmt::format("error rate {:.2f}% >= {}%", rate, number(*c.spec.analysis.abort_max_error_rate));
      co_await rollback(c, reason);
    }
  }
}

// --- state, status, metrics ---

json::object controller::status_json(const canary& c) const {
  const auto& st = c.state;
  json::array events;
  for (const auto& e : c.events) events.push_back(json::string(e));
  json::object metrics;
  for (const auto& [k, v] : c.metric_values) metrics[k] = v;
  json::array unreachable;
  for (const auto& u : c.unreachable) unreachable.push_back(json::string(u));
  return {{"name", c.spec.name},
          {"namespace", c.spec.ns},
          {"route", c.spec.route},
          {"phase", st.phase},
          {"revision", st.revision},
          {"canary_weight", st.weight},
          {"failed_checks", st.failed_checks},
          {"threshold", c.spec.analysis.threshold},
          {"iterations", st.iterations},
          {"last_transition", st.last_transition},
          {"metrics", std::move(metrics)},
          {"unreachable_proxies", std::move(unreachable)},
          {"events", std::move(events)}};
}

void controller::save_state() {
  if (options_.state_file.empty()) return;
  json::object all;
  for (const auto& [id, st] : saved_) all[id] = json::object{{"phase", st.phase}, {"revision", st.revision}};
  for (const auto& [id, c] : canaries_) {
    const auto& st = c->state;
    all[id] = json::object{{"phase", st.phase},
                           {"revision", st.revision},
                           {"pending_revision", st.pending_revision},
                           {"weight", st.weight},
                           {"failed_checks", st.failed_checks},
                           {"iterations", st.iterations},
                           {"steps", st.steps},
                           {"affinity_value", st.affinity_value},
                           {"pre_rollout_done", st.pre_rollout_done},
                           {"promote_confirmed", st.promote_confirmed},
                           {"primary_promoted", st.primary_promoted},
                           {"promoting_since", st.promoting_since},
                           {"last_transition", st.last_transition}};
  }
  std::string tmp = options_.state_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json::serialize(json::object{{"canaries", std::move(all)}}) << "\n";
    if (!out) {
      log::warn("state: cannot write {}", tmp);
      return;
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, options_.state_file, ec);  // atomic: a crash leaves the old or the new file
  if (ec) log::warn("state: cannot replace {}: {}", options_.state_file, ec.message());
}

void controller::load_state() {
  if (options_.state_file.empty()) return;
  std::string message;
  auto text = read_file(options_.state_file, message);
  if (!text) return;  // first start
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec || !v.is_object() || !v.as_object().contains("canaries")) {
    log::warn("state: {} is not vane-control state; starting afresh", options_.state_file);
    return;
  }
  for (const auto& [id, s] : v.as_object().at("canaries").as_object()) {
    const auto& o = s.as_object();
    run_state st;
    auto str = [&](const char* k) { return o.contains(k) ? std::string(o.at(k).as_string()) : std::string(); };
    auto num = [&](const char* k) { return o.contains(k) ? o.at(k).to_number<std::int64_t>() : 0; };
    auto flag = [&](const char* k) { return o.contains(k) && o.at(k).as_bool(); };
    st.phase = str("phase");
    st.revision = str("revision");
    st.pending_revision = str("pending_revision");
    st.weight = static_cast<std::uint32_t>(num("weight"));
    st.failed_checks = static_cast<std::uint32_t>(num("failed_checks"));
    st.iterations = static_cast<std::uint32_t>(num("iterations"));
    st.steps = static_cast<std::uint32_t>(num("steps"));
    st.affinity_value = str("affinity_value");
    st.pre_rollout_done = flag("pre_rollout_done");
    st.promote_confirmed = flag("promote_confirmed");
    st.primary_promoted = flag("primary_promoted");
    st.promoting_since = num("promoting_since");
    st.last_transition = str("last_transition");
    saved_[std::string(id)] = st;
  }
  log::info("state: resumed {} canaries from {}", saved_.size(), options_.state_file);
}

std::string controller::metrics_text() const {
  std::string out;
  metrics::prometheus_writer w(out);
  w.family("vane_canary_status", "gauge", "Canary phase: 0 Progressing, 2 Failed, 1 any other.");
  for (const auto& [id, c] : canaries_) {
    if (c->removed) continue;
    metrics::label l[] = {{"name", c->spec.name}, {"namespace", c->spec.ns}};
    double v = c->state.phase == "Progressing" ? 0 : c->state.phase == "Failed" ? 2 : 1;
    w.sample("vane_canary_status", l, v);
  }
  w.family("vane_canary_weight", "gauge", "Traffic weight of the primary and canary workloads.");
  for (const auto& [id, c] : canaries_) {
    if (c->removed) continue;
    metrics::label p[] = {{"workload", c->spec.primary}, {"namespace", c->spec.ns}};
    metrics::label k[] = {{"workload", c->spec.canary}, {"namespace", c->spec.ns}};
    w.sample("vane_canary_weight", p, std::uint64_t{100 - c->state.weight});
    w.sample("vane_canary_weight", k, std::uint64_t{c->state.weight});
  }
  w.family("vane_canaries", "gauge", "Canaries loaded, by namespace.");
  std::map<std::string, std::uint64_t> per_ns;
  for (const auto& [id, c] : canaries_)
    if (!c->removed) ++per_ns[c->spec.ns];
  for (const auto& [ns, n] : per_ns) {
    metrics::label l[] = {{"namespace", ns}};
    w.sample("vane_canaries", l, n);
  }
  w.family("vane_canary_duration_seconds", "histogram", "Duration of one analysis tick.");
  w.histogram_seconds("vane_canary_duration_seconds", {}, tick_durations_, metrics::duration_bounds());
  w.family("vane_canary_metric_analysis", "gauge", "Last value of each analysis metric.");
  for (const auto& [id, c] : canaries_) {
    if (c->removed) continue;
    for (const auto& [m, v] : c->metric_values) {
      metrics::label l[] = {{"name", c->spec.name}, {"namespace", c->spec.ns}, {"metric", m}};
      w.sample("vane_canary_metric_analysis", l, v);
    }
  }
  w.family("vane_canary_successes_total", "counter", "Runs that were promoted.");
  for (const auto& [id, c] : canaries_) {
    metrics::label l[] = {{"name", c->spec.name}, {"namespace", c->spec.ns}};
    w.sample("vane_canary_successes_total", l, c->successes);
  }
  w.family("vane_canary_failures_total", "counter", "Runs that were rolled back.");
  for (const auto& [id, c] : canaries_) {
    metrics::label l[] = {{"name", c->spec.name}, {"namespace", c->spec.ns}};
    w.sample("vane_canary_failures_total", l, c->failures);
  }
  return out;
}

// --- HTTP API ---

std::optional<std::string> controller::command(canary& c, std::string_view action, const json::object& body) {
  auto& st = c.state;
  if (action == "rollout") {
    std::string revision = st.revision;
    if (const auto* r = body.if_contains("revision")) {
      if (!r->is_string() || r->as_string().empty()) return "revision must be a non-empty string";
      revision = std::string(r->as_string());
    } else if (c.spec.revision) {
      revision = *c.spec.revision;
    }
    if (revision.empty()) return "no revision: give {\"revision\": R}";
    if (revision == st.revision && run_active(st)) return "revision " + revision + " is already being analysed";
    st.pending_revision = revision;
    if (revision == st.revision) st.revision.clear();  // the same revision again: a new run
  } else if (action == "promote") {
    if (st.phase != "WaitingPromotion" && st.phase != "Progressing")
      return "nothing to promote: " + c.spec.id() + " is " + st.phase;
    st.promote_confirmed = true;
  } else if (action == "abort") {
    if (!run_active(st)) return "nothing to abort: " + c.spec.id() + " is " + st.phase;
    st.failed_checks = std::max(st.failed_checks, c.spec.analysis.threshold);
    if (st.phase != "Progressing") set_phase(c, "Progressing");  // rolls back at its next tick, now
  } else if (action == "resume") {
    if (st.phase != "Failed") return "nothing to resume: " + c.spec.id() + " is " + st.phase;
    st.pending_revision = st.revision;
    st.revision.clear();
  } else {
    return "unknown action '" + std::string(action) + "' (rollout, promote, abort, resume)";
  }
  save_state();
  c.wake->cancel();
  return std::nullopt;
}

asio::awaitable<void> controller::api_session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  http::request_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  stream.expires_after(std::chrono::seconds(30));
  auto [ec, n] = co_await http::async_read(stream, buffer, parser, nothrow);
  if (ec) co_return;
  const auto& req = parser.get();
  std::string path(req.target().substr(0, req.target().find('?')));
  unsigned status = 200;
  json::value answer;
  std::string text;
  auto error = [&](unsigned s, std::string message) {
    status = s;
    answer = json::object{{"error", std::move(message)}};
  };
  auto find = [&](std::string_view name) -> canary* {
    canary* found = nullptr;
    for (auto& [id, c] : canaries_) {
      if (c->removed) continue;
      if (id == name || c->spec.name == name) {
        if (found && c->spec.name == name && id != name) return nullptr;  // ambiguous: say NAME.NAMESPACE
        found = c.get();
      }
    }
    return found;
  };
  constexpr std::string_view prefix = "/canaries/";
  if (path == "/ready") {
    answer = json::object{{"ready", ready_}};
  } else if (path == "/metrics") {
    text = metrics_text();
  } else if (path == "/canaries" && req.method() == http::verb::get) {
    json::array all;
    for (const auto& [id, c] : canaries_)
      if (!c->removed) all.push_back(status_json(*c));
    answer = json::object{{"canaries", std::move(all)}};
  } else if (path.starts_with(prefix)) {
    std::string rest = path.substr(prefix.size());
    std::string name = rest.substr(0, rest.find('/'));
    std::string action = rest.find('/') == std::string::npos ? "" : rest.substr(rest.find('/') + 1);
    canary* c = find(name);
    if (!c) {
      error(404, "no canary named '" + name + "' (or it is ambiguous: say NAME.NAMESPACE)");
    } else if (action.empty()) {
      if (req.method() != http::verb::get) error(405, "use GET");
      else answer = status_json(*c);
    } else if (req.method() != http::verb::post) {
      error(405, "use POST");
    } else {
      json::object body;
      boost::system::error_code jec;
      if (!req.body().empty()) {
        json::value v = json::parse(req.body(), jec);
        if (jec || !v.is_object()) error(400, "body must be a JSON object");
        else body = v.as_object();
      }
      if (status == 200) {
        if (action != "rollout" && action != "promote" && action != "abort" && action != "resume")
          error(404, "unknown action '" + action + "' (rollout, promote, abort, resume)");
        else if (auto err = command(*c, action, body)) error(409, *err);
        else answer = status_json(*c);
      }
    }
  } else {
    error(404, "unknown path " + path + " (GET /ready, /metrics, /canaries, /canaries/NAME; POST /canaries/NAME/rollout|promote|abort|resume)");
  }
  http::response<http::string_body> res{static_cast<http::status>(status), 11};
  res.set(http::field::server, "vane-control");
  if (!text.empty()) {
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = std::move(text);
  } else {
    res.set(http::field::content_type, "application/json");
    res.body() = json::serialize(answer) + "\n";
  }
  res.keep_alive(false);
  res.prepare_payload();
  co_await http::async_write(stream, res, nothrow);
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> controller::serve_api() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_->async_accept(nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    asio::co_spawn(ctx_, api_session(std::move(socket)), asio::detached);
  }
}

}  // namespace vane::control
