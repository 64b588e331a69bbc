#pragma once
// vane-control's engine: wires the loops together. It loads the documents of
// --canaries DIR (and follows changes), runs one supervised analysis loop and
// one abort loop per Canary, and serves the API; the concerns live in their
// own units: the fleet client (fleet.*), the metric providers (builtin.*,
// prometheus.*), webhooks, alerts, promotion, the state file (state_store.*),
// the API (api.*) and what it shows (status.*). Everything runs on one
// io_context thread: no locks.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/histogram.hpp"
#include "control/api.hpp"
#include "control/canary.hpp"
#include "control/fleet.hpp"
#include "control/k8s_config.hpp"
#include "control/spec.hpp"
#include "control/webhooks.hpp"

namespace vane::control {

struct controller_options {
  std::string canaries_dir;
  std::string listen = "127.0.0.1:9902";
  std::string state_file;
  std::string proxy_token;  // read from --proxy-token-file
  // The Kubernetes API's credentials (--kubeconfig, or in-cluster), for k8s:
  // proxies; none: a Canary naming k8s: proxies is refused.
  std::optional<k8s_config> kubernetes;
  // --leader-elect: start() binds the API only; no state, no documents, no
  // canary work (and /ready false) until lead() is called.
  bool wait_for_leadership = false;
};

// What a cluster does around the analysis (vane-control --kubernetes, control/k8s_mode.cpp); none in file
// mode. Called on the controller's thread.
class cluster_hooks {
 public:
  virtual ~cluster_hooks() = default;
  // Before a tick: the cluster side of the canary (initialization, the revision into c.spec.revision);
  // false: no tick now (why is in c.tick_reasons).
  virtual boost::asio::awaitable<bool> before_tick(canary_record& c) = 0;
  // After a tick, or a rollback by the abort loop: the cluster as the run now is (scale down, status).
  virtual boost::asio::awaitable<void> after_tick(canary_record& c) = 0;
  virtual boost::asio::awaitable<workload_readiness> canary_ready(canary_record& c) = 0;
  // Makes the primary run the canary's revision; false: it could not (said in an event).
  virtual boost::asio::awaitable<bool> promote(canary_record& c) = 0;
  virtual boost::asio::awaitable<bool> primary_ready(canary_record& c) = 0;
  virtual void event(canary_record& c, const std::string& message) = 0;
};
class k8s_client;
class k8s_endpoints;

class controller {
 public:
  explicit controller(controller_options options);
  ~controller();
  // Loads the documents and the state, binds the API; throws std::runtime_error on failure.
  void start();
  int run();  // until SIGTERM/SIGINT (0), or stop(code)
  // From any thread: this process leads now; the canary work starts (--leader-elect).
  void lead();
  // From any thread: the controller stops at once (its loops run no further) and run() returns `code`.
  void stop(int code);
  // Its one thread's executor, for a server that runs beside it (the inject webhook).
  boost::asio::any_io_executor executor() { return ctx_.get_executor(); }
  // --leader-elect: called on the controller's thread once this process leads (the Kubernetes mode's
  // informers start there).
  std::function<void()> on_lead;
  // Kubernetes mode: the cluster's side of each run (set before run()).
  void set_cluster(cluster_hooks* hooks) { cluster_ = hooks; }
  // The documents from elsewhere than --canaries (the API server): canaries added, changed or removed
  // as load_documents does; a new canary starts from `seeds` (its status) when it is there, and so does
  // one named in `restart` (another object of the same name).
  void set_documents(documents next, const std::map<std::string, run_state>& seeds,
                     const std::set<std::string>& restart = {});
  // An event line (printed, kept, posted to event webhooks and to the cluster).
  void event(canary_record& c, const std::string& message);
  // Why readings are missing in this tick (each proxy, metric or answer that could not be read).
  void note(canary_record& c, std::string reason);

 private:
  class fleet_env;  // run_env on the real fleet

  void load_documents(bool initial);
  void begin_work();  // state, documents, the document watcher
  // false (and logged) when the spec names k8s: proxies and there are no credentials; starts their watches.
  bool k8s_proxies_usable(const canary_spec& spec);
  void spawn_loops(const std::string& id, canary_record& c);
  boost::asio::awaitable<void> watch_loop();
  boost::asio::awaitable<void> canary_loop(std::string id, std::uint64_t epoch);
  boost::asio::awaitable<void> abort_loop(std::string id, std::uint64_t epoch);
  canary_record* live(const std::string& id, std::uint64_t epoch);

  // Reads every proxy's /stats/latency into the canary's history and guard view; the answers, by URL.
  struct fleet_reading {
    std::vector<std::string> urls;
    std::vector<parsed<boost::json::object>> answers;
  };
  boost::asio::awaitable<fleet_reading> read_stats(canary_record& c);
  boost::asio::awaitable<metric_reading> read_metric(canary_record& c, const metric_spec& m, bool mirror);
  boost::asio::awaitable<bool> push_traffic(canary_record& c,
                                            boost::json::object traffic);  // true: every proxy took it
  boost::asio::awaitable<bool> primary_healthy(canary_record& c);
  boost::asio::awaitable<bool> promote(canary_record& c);
  boost::asio::awaitable<void> notify(canary_record& c, std::string message, std::string severity);

  // The tick's reasons become the canary's: logged when they change.
  void settle_reasons(canary_record& c);
  std::optional<std::string> command(canary_record& c, std::string_view action, const boost::json::object& body);
  void save_state();
  void load_state();

  controller_options options_;
  boost::asio::io_context ctx_{1};
  boost::asio::signal_set signals_{ctx_};
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
  fleet_client fleet_;
  api_handlers api_;
  std::map<std::string, std::unique_ptr<canary_record>> canaries_;  // by NAME.NAMESPACE
  documents docs_;
  std::map<std::string, std::string> file_texts_;  // what was loaded, by path
  std::map<std::string, run_state> saved_;         // from the state file, for canaries not loaded yet
  std::uint64_t next_epoch_ = 1;
  bool ready_ = false;
  std::atomic<int> exit_code_{0};
  std::shared_ptr<k8s_client> k8s_;
  std::shared_ptr<event_outbox> events_out_ = std::make_shared<event_outbox>();  // event webhooks, in order
  std::shared_ptr<k8s_endpoints> endpoints_;
  log_linear_histogram tick_durations_;  // µs, all canaries
  cluster_hooks* cluster_ = nullptr;
};

}  // namespace vane::control
