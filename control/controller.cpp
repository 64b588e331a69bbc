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

std::string number(double v) { return fmt::format("{}", v); }

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
  std::error_code ec;
  auto texts = read_document_files(options_.canaries_dir, ec);
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
      log::info("canary {} loaded from {} ({}{})", id, spec.file, phase_name(c->state.phase),
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
                       {"phase", phase_name(c.state.phase)},
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

asio::awaitable<bool> controller::push_traffic(canary& c, json::object traffic) {
  std::vector<std::string> urls = co_await proxy_urls(c);
  std::string body = json::serialize(traffic);
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
  struct reading {
    std::optional<json::object> stats;
    std::string error;
  };
  auto results = std::make_shared<std::vector<reading>>(urls.size());
  auto get = [this, urls, results](std::size_t i) -> asio::awaitable<void> {
    std::string url = urls[i], target = "/stats/latency";
    duration timeout = std::chrono::seconds(5);
    auto& r = (*results)[i];
    r.stats = co_await proxy_get(url, target, timeout, &r.error);
  };
  co_await for_all(ctx_.get_executor(), urls.size(), get);
  c.unreachable.clear();
  steady::duration keep = std::chrono::minutes(1);
  for (const auto& m : c.spec.analysis.metrics) keep = std::max<steady::duration>(keep, m.interval);
  auto now = steady::now();
  for (std::size_t i = 0; i < urls.size(); ++i) {
    const auto& r = (*results)[i];
    if (!r.stats) {
      c.unreachable.push_back(urls[i]);
      log::warn("{}: proxy {} unreachable: {}", c.spec.id(), urls[i], r.error);
      continue;
    }
    c.history[urls[i]].add(snapshot_from_stats(*r.stats, c.spec.route, now), keep + std::chrono::seconds(1));
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

asio::awaitable<std::vector<hook_result>> controller::call_hooks(canary& c, std::string type) {
  std::vector<hook_result> out;
  for (const auto& h : c.spec.analysis.webhooks) {
    if (h.type != type) continue;
    auto url = parse_http_url(h.url);
    json::object md;
    for (const auto& [k, v] : h.metadata) md[k] = v;
    json::object payload{{"name", c.spec.name},
                         {"namespace", c.spec.ns},
                         {"phase", phase_name(c.state.phase)},
                         {"checksum", c.state.revision},
                         {"metadata", std::move(md)}};
    std::string method = "POST", target = url ? url->target : "/", body = json::serialize(payload);
    std::vector<std::pair<std::string, std::string>> headers;
    duration timeout = h.timeout;
    http_result r;
    if (url) r = co_await http_call(ctx_.get_executor(), *url, method, target, body, timeout, headers);
    out.push_back({h.name, r.status >= 200 && r.status <= 202, r.status ? fmt::format("status {}", r.status) : r.error});
  }
  co_return out;
}

asio::awaitable<metric_reading> controller::read_metric(canary& c, const metric_spec& m, bool mirror) {
  metric_reading out;
  if (!m.builtin()) {
    out.value = co_await prometheus_value(c, m);
    if (out.value) c.metric_values[m.name] = *out.value;
    co_return out;
  }
  window canary_w, primary_w;
  for (auto& [url, h] : c.history) {
    if (auto w = h.over(m.interval, series_key(c.spec.canary, mirror ? "mirror" : "upstream"))) canary_w.add(*w);
    if (auto w = h.over(m.interval, series_key(c.spec.primary, "upstream"))) primary_w.add(*w);
  }
  if (!c.unreachable.empty()) {
    out.inconclusive = true;  // its missing numbers must not count as zero errors
    out.why = fmt::format("{} proxies unreachable", c.unreachable.size());
  } else if (c.history.empty() || canary_w.inconclusive) {
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
  if (out.value) c.metric_values[m.name] = *out.value;
  co_return out;
}

// run_env on the real fleet: the controller's proxies, webhooks, Prometheus.
class controller::fleet_env final : public run_env {
 public:
  fleet_env(controller& ctl, canary& c) : ctl_(ctl), c_(c) {}
  asio::awaitable<std::vector<hook_result>> call_hooks(std::string type) override {
    std::vector<hook_result> r = co_await ctl_.call_hooks(c_, type);
    co_return r;
  }
  asio::awaitable<void> refresh() override { co_await ctl_.read_stats(c_); }
  asio::awaitable<metric_reading> read_metric(const metric_spec& m, bool mirror) override {
    metric_reading r = co_await ctl_.read_metric(c_, m, mirror);
    co_return r;
  }
  asio::awaitable<void> push(json::object traffic) override { co_await ctl_.push_traffic(c_, traffic); }
  asio::awaitable<bool> primary_healthy() override {
    bool ok = co_await ctl_.primary_healthy(c_);
    co_return ok;
  }
  asio::awaitable<bool> promote() override {
    bool ok = co_await ctl_.run_promote(c_);
    co_return ok;
  }
  asio::awaitable<void> alert(std::string message, std::string severity) override {
    co_await ctl_.notify(c_, message, severity);
  }
  void event(const std::string& message) override { ctl_.event(c_, message); }
  void changed() override { ctl_.save_state(); }
  void finished(bool succeeded) override { ++(succeeded ? c_.successes : c_.failures); }
  std::int64_t now() override { return unix_now(); }
  std::string new_affinity_value() override {
    c_.history.clear();  // a new run: windows start again, the last run's values are not shown
    c_.abort_last.clear();
    c_.metric_values.clear();
    return vane::control::new_affinity_value();
  }

 private:
  controller& ctl_;
  canary& c_;
};

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
        payload = {{"name", c.spec.name}, {"namespace", c.spec.ns}, {"phase", phase_name(c.state.phase)},
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

asio::awaitable<std::optional<json::object>> controller::proxy_get(std::string url_text, std::string target,
                                                                   duration timeout, std::string* error) {
  auto url = parse_http_url(url_text);
  if (!url) co_return std::nullopt;
  std::string method = "GET", body;
  std::vector<std::pair<std::string, std::string>> headers;
  if (!options_.proxy_token.empty()) headers.emplace_back("authorization", "Bearer " + options_.proxy_token);
  http_result r = co_await http_call(ctx_.get_executor(), *url, method, target, body, timeout, headers);
  boost::system::error_code ec;
  json::value v = r.status == 200 ? json::parse(r.body, ec) : json::value();
  if (r.status != 200 || ec || !v.is_object()) {
    if (error) *error = r.status ? fmt::format("GET {} -> {}", target, r.status) : r.error;
    co_return std::nullopt;
  }
  co_return std::move(v.as_object());
}

asio::awaitable<bool> controller::primary_healthy(canary& c) {
  std::vector<std::string> urls = co_await proxy_urls(c);
  if (urls.empty()) co_return false;
  for (const auto& u : urls) {
    std::string target = "/clusters";
    duration timeout = std::chrono::seconds(5);
    std::optional<json::object> clusters = co_await proxy_get(u, target, timeout, nullptr);
    if (!clusters) co_return false;
    bool healthy = false;
    for (const auto& cl : clusters->at("clusters").as_array())
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

asio::awaitable<void> controller::canary_loop(std::string id, std::uint64_t epoch) {
  for (;;) {
    auto it = canaries_.find(id);
    if (it == canaries_.end() || it->second->epoch != epoch) co_return;
    canary& c = *it->second;
    auto started = steady::now();
    fleet_env env(*this, c);
    canary_run run(c.spec, c.state, env);
    co_await run.tick();
    tick_durations_.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - started).count()));
    if (c.epoch != epoch) co_return;
    c.wake->expires_after(next_interval(c.spec, c.state));
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
    if (c.state.phase != canary_phase::progressing && c.state.phase != canary_phase::waiting_promotion) {
      c.abort_last.clear();
      continue;
    }
    std::vector<std::string> urls = co_await proxy_urls(c);
    window w;
    for (const auto& u : urls) {
      std::string target = "/stats/latency";
      duration timeout = std::chrono::seconds(2);
      std::optional<json::object> stats = co_await proxy_get(u, target, timeout, nullptr);
      if (!stats) continue;
      auto snap = snapshot_from_stats(*stats, c.spec.route, steady::now());
      auto last = c.abort_last.find(u);
      if (last != c.abort_last.end()) w.add(delta(&last->second, snap, series_key(c.spec.canary, "upstream")));
      c.abort_last[u] = std::move(snap);
    }
    if (c.epoch != epoch || (c.state.phase != canary_phase::progressing && c.state.phase != canary_phase::waiting_promotion)) continue;
    if (abort_due(c.spec, w.total, w.errors)) {
      double rate = 100.0 * static_cast<double>(w.errors) / static_cast<double>(w.total);
      std::string reason = fmt::format("error rate {:.2f}% >= {}%", rate, number(*c.spec.analysis.abort_max_error_rate));
      fleet_env env(*this, c);
      canary_run run(c.spec, c.state, env);
      co_await run.rollback(reason);
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
          {"phase", phase_name(st.phase)},
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
  for (const auto& [id, st] : saved_) all[id] = json::object{{"phase", phase_name(st.phase)}, {"revision", st.revision}};
  for (const auto& [id, c] : canaries_) {
    const auto& st = c->state;
    all[id] = json::object{{"phase", phase_name(st.phase)},
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
                           {"last_transition", st.last_transition},
                           {"gate_alerted", st.gate_alerted},
                           {"initialized", st.initialized}};
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
    st.phase = phase_from_name(str("phase")).value_or(canary_phase::initialized);
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
    st.gate_alerted = str("gate_alerted");
    st.initialized = !o.contains("initialized") || flag("initialized");  // older files: every canary in them was seen
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
    double v = c->state.phase == canary_phase::progressing ? 0 : c->state.phase == canary_phase::failed ? 2 : 1;
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
    if (st.phase != canary_phase::waiting_promotion && st.phase != canary_phase::progressing)
      return "nothing to promote: " + c.spec.id() + " is " + std::string(phase_name(st.phase));
    st.promote_confirmed = true;
  } else if (action == "abort") {
    if (!run_active(st)) return "nothing to abort: " + c.spec.id() + " is " + std::string(phase_name(st.phase));
    st.failed_checks = std::max(st.failed_checks, c.spec.analysis.threshold);
    if (st.phase != canary_phase::progressing) st.phase = canary_phase::progressing;  // rolls back at its next tick, now
  } else if (action == "resume") {
    if (st.phase != canary_phase::failed) return "nothing to resume: " + c.spec.id() + " is " + std::string(phase_name(st.phase));
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
