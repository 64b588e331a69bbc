#include "control/controller.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <random>
#include <set>

#include "common/address.hpp"
#include "common/listen.hpp"
#include "common/log.hpp"
#include "common/units.hpp"
#include "control/abort.hpp"
#include "control/k8s_client.hpp"
#include "control/k8s_endpoints.hpp"
#include "control/state_store.hpp"
#include "control/status.hpp"
#include "control/supervise.hpp"
#include "control/webhooks.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double unix_now_exact() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string number(double v) { return fmt::format("{}", v); }

std::string new_affinity_value() {
  static std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

bool analysing(const run_state& st) {
  return st.phase == canary_phase::progressing || st.phase == canary_phase::waiting_promotion;
}

}  // namespace

controller::controller(controller_options options)
    : options_(std::move(options)), fleet_(ctx_.get_executor(), options_.proxy_token) {
  api_.ready = [this] { return ready_; };
  api_.metrics = [this] { return metrics_text(canaries_, tick_durations_); };
  api_.canaries = [this] {
    std::vector<canary_record*> out;
    for (auto& [id, c] : canaries_)
      if (!c->removed) out.push_back(c.get());
    return out;
  };
  api_.status = [](const canary_record& c) { return status_json(c, unix_now_exact()); };
  api_.command = [this](canary_record& c, std::string_view action, const json::object& body) {
    return command(c, action, body);
  };
}

controller::~controller() = default;

void controller::start() {
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  if (options_.kubernetes) {
    std::string error;
    k8s_ = k8s_client::make(ctx_.get_executor(), *options_.kubernetes, error);
    if (!k8s_) throw std::runtime_error("the Kubernetes API: " + error);
    endpoints_ = std::make_shared<k8s_endpoints>(k8s_);
    fleet_.endpoints = endpoints_;
  }
  if (!options_.wait_for_leadership) {
    load_state();
    if (!options_.canaries_dir.empty()) load_documents(true);
  }
  auto hp = parse_host_port(options_.listen);
  if (!hp) throw std::runtime_error("--listen: '" + options_.listen + "' is not HOST:PORT");
  boost::system::error_code ec;
  tcp::endpoint ep(asio::ip::make_address(hp->host, ec), hp->port);
  if (ec) throw std::runtime_error("--listen: '" + hp->host + "' is not an IP address");
  acceptor_.emplace(listen_on(ctx_.get_executor(), ep, false, ec));
  if (ec) throw std::runtime_error("cannot listen on " + options_.listen + ": " + ec.message());
  auto bound = acceptor_->local_endpoint();
  log::info("vane-control listening on {}", host_port{bound.address().to_string(), bound.port()}.to_string());
  ready_ = !options_.wait_for_leadership;
}

void controller::lead() {
  asio::post(ctx_, [this] { begin_work(); });
}

void controller::stop(int code) {
  exit_code_ = code;
  ctx_.stop();
}

void controller::begin_work() {
  log::info("leading: loading the canaries");
  try {
    load_state();
    if (!options_.canaries_dir.empty()) load_documents(true);
  } catch (const std::exception& e) {
    log::error("{}", e.what());
    stop(1);
    return;
  }
  ready_ = true;
  if (on_lead) on_lead();
  if (options_.canaries_dir.empty()) return;  // --kubernetes: the documents come from the API server
  supervised watcher;
  watcher.who = "document watcher";
  watcher.start = [this] { return watch_loop(); };
  supervise(ctx_.get_executor(), std::move(watcher));
}

int controller::run() {
  supervised api;
  api.who = "API";
  api.start = [this] { return serve_api(*acceptor_, api_); };
  supervise(ctx_.get_executor(), std::move(api));
  if (!options_.wait_for_leadership && !options_.canaries_dir.empty()) {
    supervised watcher;
    watcher.who = "document watcher";
    watcher.start = [this] { return watch_loop(); };
    supervise(ctx_.get_executor(), std::move(watcher));
  }
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::info("signal {}: stopping", sig);
    if (ready_) save_state();  // (a standby has no state to save)
    ctx_.stop();
  });
  ctx_.run();
  return exit_code_.load();
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
  set_documents(std::move(next), saved_);
}

void controller::set_documents(documents next, const std::map<std::string, run_state>& seeds,
                               const std::set<std::string>& restart) {
  docs_ = std::move(next);
  std::set<std::string> seen;
  for (const auto& spec : docs_.canaries) {
    std::string id = spec.id();
    if (!seen.insert(id).second) {
      log::error("{}:{}: Canary {} is defined twice; the first one is used", spec.file, spec.line, id);
      continue;
    }
    if (!k8s_proxies_usable(spec)) {
      seen.erase(id);  // refused: as if it were not there
      continue;
    }
    auto it = canaries_.find(id);
    if (it == canaries_.end()) {
      auto c = std::make_unique<canary_record>();
      c->spec = spec;
      if (auto s = seeds.find(id); s != seeds.end()) c->state = s->second;
      c->saved = c->state;
      c->wake = std::make_unique<asio::steady_timer>(ctx_);
      c->epoch = next_epoch_++;
      log::info("canary {} loaded from {} ({}{})", id, spec.file, phase_name(c->state.phase),
                c->state.revision.empty() ? "" : ", revision " + c->state.revision);
      auto& ref = *c;
      canaries_[id] = std::move(c);
      spawn_loops(id, ref);
    } else {
      canary_record& c = *it->second;
      c.spec = spec;
      if (restart.count(id) > 0) {
        // Another object of the same name (deleted and made again): its state is its own.
        auto s = seeds.find(id);
        c.state = s != seeds.end() ? s->second : run_state{};
        c.saved = c.state;
        c.events.clear();
        c.metric_values.clear();
        log::info("canary {} is a new object: starting from its own state ({})", id, phase_name(c.state.phase));
        if (!c.removed) {
          c.epoch = next_epoch_++;  // the old loops end
          spawn_loops(id, c);
        }
      }
      if (c.removed) {
        c.removed = false;
        c.epoch = next_epoch_++;
        spawn_loops(id, c);
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

bool controller::k8s_proxies_usable(const canary_spec& spec) {
  for (const auto& p : spec.proxies) {
    auto ref = parse_k8s_proxy(p);
    if (!ref) continue;
    if (!endpoints_) {
      log::error(
          "{}:{}: Canary {} refused: spec.proxies names {}, which needs the Kubernetes API, and vane-control has no "
          "credentials for it (give --kubeconfig FILE, or run it in a pod with a service account)",
          spec.file, spec.line, spec.id(), p);
      return false;
    }
    endpoints_->watch(*ref);
  }
  return true;
}

canary_record* controller::live(const std::string& id, std::uint64_t epoch) {
  auto it = canaries_.find(id);
  if (it == canaries_.end() || it->second->epoch != epoch || it->second->removed) return nullptr;
  return it->second.get();
}

void controller::spawn_loops(const std::string& id, canary_record& c) {
  const std::uint64_t epoch = c.epoch;
  auto wanted = [this, id, epoch] { return live(id, epoch) != nullptr; };
  supervised analysis{"canary " + id + ": analysis loop", [this, id, epoch] { return canary_loop(id, epoch); }, wanted,
                      [this, id, epoch](const std::string& what) {
                        if (canary_record* c = live(id, epoch)) {
                          c->state = c->saved;                   // a tick cut short: from where it was last written
                          c->state.promotion_in_flight = false;  // (a promote() cut short ran no more)
                          ++c->loop_restarts;
                          c->reason = "analysis loop ended by an exception: " + what + "; restarted";
                        }
                      }};
  supervise(ctx_.get_executor(), std::move(analysis));
  supervised abort{"canary " + id + ": abort loop", [this, id, epoch] { return abort_loop(id, epoch); }, wanted,
                   [this, id, epoch](const std::string&) {
                     if (canary_record* c = live(id, epoch)) {
                       c->abort_last.clear();
                       ++c->loop_restarts;
                     }
                   }};
  supervise(ctx_.get_executor(), std::move(abort));
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

void controller::event(canary_record& c, const std::string& message) {
  std::string line = utc_now_ms() + " " + message;
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
  c.events.push_back(line);
  while (c.events.size() > 50) c.events.pop_front();
  events_out_->post(ctx_.get_executor(), c.spec, c.state, message);
  if (cluster_) cluster_->event(c, message);
}

void controller::note(canary_record& c, std::string reason) {
  if (std::find(c.tick_reasons.begin(), c.tick_reasons.end(), reason) == c.tick_reasons.end())
    c.tick_reasons.push_back(std::move(reason));
}

void controller::settle_reasons(canary_record& c) {
  std::string now;
  for (const auto& r : c.tick_reasons) now += (now.empty() ? "" : "; ") + r;
  c.tick_reasons.clear();
  if (now == c.reason) return;
  if (!now.empty())
    log::warn("{}: {}", c.spec.id(), now);
  else
    log::info("{}: readings are back", c.spec.id());
  c.reason = std::move(now);
}

// run_env on the real fleet: the controller's proxies, webhooks, Prometheus.
class controller::fleet_env final : public run_env {
 public:
  fleet_env(controller& ctl, canary_record& c) : ctl_(ctl), c_(c) {}
  asio::awaitable<std::vector<hook_result>> call_hooks(std::string type) override {
    auto ex = ctl_.ctx_.get_executor();
    std::vector<hook_result> r = co_await vane::control::call_hooks(ex, c_.spec, c_.state, type);
    co_return r;
  }
  asio::awaitable<void> refresh() override { co_await ctl_.read_stats(c_); }
  std::optional<std::string> guard_tripped() override { return guard_reason(c_.spec, c_.guard); }
  asio::awaitable<metric_reading> read_metric(const metric_spec& m, bool mirror) override {
    metric_reading r = co_await ctl_.read_metric(c_, m, mirror);
    co_return r;
  }
  asio::awaitable<bool> push(json::object traffic) override { co_return co_await ctl_.push_traffic(c_, traffic); }
  asio::awaitable<workload_readiness> canary_ready() override {
    if (!ctl_.cluster_) co_return workload_readiness{};
    workload_readiness r = co_await ctl_.cluster_->canary_ready(c_);
    co_return r;
  }
  asio::awaitable<bool> primary_healthy() override {
    bool ok = co_await ctl_.primary_healthy(c_);
    co_return ok;
  }
  asio::awaitable<bool> promote() override {
    bool ok = co_await ctl_.promote(c_);
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
    for (auto& [url, h] : c_.history) h.start_over();  // a new run: its windows start now (a reading ago)
    c_.abort_last.clear();
    c_.metric_values.clear();
    return vane::control::new_affinity_value();
  }

 private:
  controller& ctl_;
  canary_record& c_;
};

asio::awaitable<void> controller::canary_loop(std::string id, std::uint64_t epoch) {
  for (;;) {
    canary_record* c = live(id, epoch);
    if (!c) co_return;
    auto started = steady::now();
    bool tick = true;
    if (cluster_) {
      tick = co_await cluster_->before_tick(*c);
      if (c->epoch != epoch) co_return;
    }
    if (tick) {
      fleet_env env(*this, *c);
      canary_run run(c->spec, c->state, env);
      co_await run.tick();
    }
    if (cluster_ && c->epoch == epoch) co_await cluster_->after_tick(*c);
    tick_durations_.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - started).count()));
    c->last_tick = unix_now_exact();
    settle_reasons(*c);
    if (c->epoch != epoch) co_return;
    c->wake->expires_after(next_interval(c->spec, c->state));
    co_await c->wake->async_wait(nothrow);
  }
}

// Every second, whatever the phase: one reading of every proxy, so that the
// first tick of a run has a full window; and while a run is analysed, the
// proxies' guard (vane) and the fast abort check (vane: the canary's error
// share since the last reading, at least minRequests and maxErrorRate % or
// more), each of which rolls back at once.
asio::awaitable<void> controller::abort_loop(std::string id, std::uint64_t epoch) {
  asio::steady_timer timer(ctx_);
  for (;;) {
    timer.expires_after(std::chrono::seconds(1));
    co_await timer.async_wait(nothrow);
    canary_record* c = live(id, epoch);
    if (!c) co_return;
    fleet_reading reading = co_await read_stats(*c);
    if (c->epoch != epoch) co_return;
    if (!analysing(c->state) || c->state.promotion_in_flight) {
      c->abort_last.clear();
      continue;
    }
    std::optional<std::string> reason = guard_reason(c->spec, c->guard);
    if (!reason && c->spec.analysis.abort_max_error_rate) {
      abort_sample sample = sample_abort(c->spec, reading.urls, reading.answers, c->abort_last, steady::now());
      for (auto& p : sample.problems) note(*c, std::move(p));
      const window& w = sample.canary;
      if (abort_due(c->spec, w.total, w.errors)) {
        double rate = 100.0 * static_cast<double>(w.errors) / static_cast<double>(w.total);
        reason = fmt::format("error rate {:.2f}% >= {}%", rate, number(*c->spec.analysis.abort_max_error_rate));
      }
    }
    if (!reason) continue;
    fleet_env env(*this, *c);
    canary_run run(c->spec, c->state, env);
    co_await run.rollback(*reason);
    if (cluster_ && c->epoch == epoch) co_await cluster_->after_tick(*c);
  }
}

// --- state and commands ---

std::optional<std::string> controller::command(canary_record& c, std::string_view action, const json::object& body) {
  if (auto refused = apply_command(c.spec, c.state, action, body)) return refused;
  save_state();
  c.wake->cancel();
  return std::nullopt;
}

void controller::save_state() {
  std::map<std::string, run_state> all = saved_;
  for (auto& [id, c] : canaries_) {
    all[id] = c->state;
    c->saved = c->state;
  }
  if (options_.state_file.empty()) return;
  if (auto error = write_state_file(options_.state_file, render_state_text(all)); !error.empty())
    log::warn("state: {}", error);
}

void controller::load_state() {
  if (options_.state_file.empty()) return;
  std::string message;
  auto text = read_file(options_.state_file, message);
  if (!text) return;  // first start
  state_file file = read_state_text(*text);
  if (file.canaries.empty() && !file.problems.empty()) {
    log::warn("state: {} is not vane-control state ({}); starting afresh", options_.state_file, file.problems.front());
    return;
  }
  for (const auto& p : file.problems) log::warn("state: {}: {}; it starts afresh", options_.state_file, p);
  saved_ = std::move(file.canaries);
  log::info("state: resumed {} canaries from {}", saved_.size(), options_.state_file);
}

}  // namespace vane::control
