#pragma once
// vane-control's engine: loads the documents of --canaries DIR (and follows
// changes), runs one analysis loop per Canary with Flagger's semantics,
// drives every proxy of the fleet through PUT /routes/NAME/traffic, reads
// their /stats/latency, calls webhooks, promotes or rolls back, keeps its
// state in --state FILE, and serves its HTTP API and metrics. Everything runs
// on one io_context thread: no locks.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/histogram.hpp"
#include "control/builtin.hpp"
#include "control/run.hpp"
#include "control/spec.hpp"

namespace vane::control {

struct controller_options {
  std::string canaries_dir;
  std::string listen = "127.0.0.1:9902";
  std::string state_file;
  std::string proxy_token;  // read from --proxy-token-file
};

class controller {
 public:
  explicit controller(controller_options options);
  ~controller();
  // Loads the documents and the state, binds the API; throws std::runtime_error on failure.
  void start();
  int run();  // until SIGTERM/SIGINT

 private:
  struct canary {
    canary_spec spec;
    run_state state;
    std::deque<std::string> events;  // recent, for the API
    std::map<std::string, proxy_history> history;  // per proxy admin URL
    std::map<std::string, proxy_snapshot> abort_last;  // per proxy, for the fast abort check
    std::uint64_t epoch = 0;  // bumps when the spec changes: the old loop ends
    bool running = false;
    std::uint64_t successes = 0, failures = 0;
    std::map<std::string, double> metric_values;
    std::vector<std::string> unreachable;
    bool removed = false;  // its document is gone: no loop runs, the API does not list it
    std::unique_ptr<boost::asio::steady_timer> wake;  // cancelled by API calls: the next tick comes at once
  };

  void load_documents(bool initial);
  boost::asio::awaitable<void> watch_loop();
  boost::asio::awaitable<void> canary_loop(std::string id, std::uint64_t epoch);
  boost::asio::awaitable<void> abort_loop(std::string id, std::uint64_t epoch);
  class fleet_env;  // run_env on the real fleet (controller.cpp)
  boost::asio::awaitable<std::vector<hook_result>> call_hooks(canary& c, std::string type);
  boost::asio::awaitable<metric_reading> read_metric(canary& c, const metric_spec& m, bool mirror);
  boost::asio::awaitable<bool> push_traffic(canary& c, boost::json::object traffic);
  boost::asio::awaitable<void> read_stats(canary& c);
  boost::asio::awaitable<bool> primary_healthy(canary& c);
  boost::asio::awaitable<bool> run_promote(canary& c);
  boost::asio::awaitable<std::optional<double>> prometheus_value(canary& c, const metric_spec& m);
  boost::asio::awaitable<std::vector<std::string>> proxy_urls(const canary& c);
  // GET of a proxy's admin API (with the proxy token); the JSON object, or nullopt (logged by the caller).
  boost::asio::awaitable<std::optional<boost::json::object>> proxy_get(std::string url, std::string target,
                                                                       duration timeout, std::string* error);
  boost::asio::awaitable<void> serve_api();
  boost::asio::awaitable<void> api_session(boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<void> notify(canary& c, std::string message, std::string severity);

  void event(canary& c, const std::string& message);
  boost::json::object status_json(const canary& c) const;
  std::string metrics_text() const;
  void save_state();
  void load_state();
  std::optional<std::string> command(canary& c, std::string_view action, const boost::json::object& body);

  controller_options options_;
  boost::asio::io_context ctx_{1};
  boost::asio::signal_set signals_{ctx_};
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
  std::map<std::string, std::unique_ptr<canary>> canaries_;  // by NAME.NAMESPACE
  documents docs_;
  std::map<std::string, std::string> file_texts_;  // what was loaded, by path
  std::map<std::string, run_state> saved_;         // from the state file, for canaries not loaded yet
  std::uint64_t next_epoch_ = 1;
  bool ready_ = false;
  log_linear_histogram tick_durations_;  // µs, all canaries
};

}  // namespace vane::control
