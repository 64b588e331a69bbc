#pragma once
// The control thread of vane-proxy: owns the file config, the traffic
// overrides and the listeners; turns them into route tables and hands those
// to the workers; reloads on SIGHUP and on file changes (including the
// Kubernetes ConfigMap `..data` symlink swap); serves the admin API; drains.
//
// Everything here runs on one thread (ctx_), so the control state needs no
// lock; workers only ever see immutable tables posted to them.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "proxy/config.hpp"
#include "proxy/route_table.hpp"
#include "proxy/server.hpp"
#include "proxy/traffic.hpp"

namespace vane::proxy {

struct admin_reply {
  unsigned status = 200;
  boost::json::object body;
  std::string text;  // when set, sent instead of `body` as text/plain (the Prometheus exposition)
};

class runtime {
 public:
  // `access_log`: a file, "-" for stdout, "" for none.
  runtime(std::string config_path, proxy_config config, std::size_t workers, const std::string& access_log = "");
  ~runtime();

  // Resolves, binds every listener and the admin API, starts the workers.
  // Throws std::runtime_error with a readable message on failure.
  void start();
  // Runs the control thread until the proxy has drained; returns the exit code.
  int run();

  // --- the admin API's view (control thread) ---
  bool ready() const { return ready_; }
  const std::string& admin_token() const { return file_config_.admin.token; }
  boost::json::object config_json() const;
  // GET /metrics: Prometheus text format 0.0.4. GET /stats/latency: the fine histograms as JSON.
  std::string metrics_text() const;
  boost::json::object latency_json() const;
  boost::asio::awaitable<boost::json::object> clusters_json();
  std::optional<boost::json::object> route_json(std::string_view name) const;
  boost::asio::awaitable<admin_reply> put_traffic(std::string_view route, std::string_view body);
  boost::asio::awaitable<admin_reply> delete_traffic(std::string_view route);
  void start_drain(std::string_view why);

 private:
  boost::asio::awaitable<void> publish(proxy_config effective, std::shared_ptr<const route_table> table);
  // A new table from the same effective config (health or DNS changed): policy generations stay.
  boost::asio::awaitable<void> rebuild(const resolved_map* resolved, std::string_view why);
  table_inputs inputs();
  // The route's guard as /routes/NAME and /stats/latency show it (null: none in effect).
  boost::json::value guard_json(std::string_view route) const;
  boost::json::array guards_json() const;  // every route's
  // Makes `next` the overrides (building and publishing a table when they changed); answers with the route.
  boost::asio::awaitable<admin_reply> commit_overrides(overrides_map next, std::string_view name);
  // Health checks (health.cpp): one coroutine per checked endpoint, restarted when a cluster's endpoints change.
  void start_health_checks();
  boost::asio::awaitable<void> check_endpoint(std::string cluster, boost::asio::ip::tcp::endpoint endpoint,
                                              health_check_config hc, std::uint64_t epoch);
  // Re-resolves endpoints given as DNS names every cluster's dns_refresh_rate.
  boost::asio::awaitable<void> refresh_dns();
  // The DNS names of `next`'s clusters that the table in effect has not
  // resolved (new or changed clusters), looked up on the resolver's thread.
  boost::asio::awaitable<lookup_map> look_up_new_names(const proxy_config& next);
  boost::asio::awaitable<void> watch_certificates();
  boost::asio::awaitable<void> reload(std::string why, bool only_if_changed);
  // Makes a validated config the active one, or refuses it (a listener cannot bind, a name does not resolve).
  boost::asio::awaitable<void> apply_config(proxy_config next, std::string text, const std::string& why);
  boost::asio::awaitable<void> drain();
  void watch_file_setup();
  boost::asio::awaitable<void> watch_file();
  boost::asio::awaitable<void> wait_signals();
  boost::asio::awaitable<void> serve_admin();

  // Declared first, destroyed last: every I/O object below is bound to it.
  boost::asio::io_context ctx_{1};
  std::string config_path_;
  std::string config_text_;  // of the last load that took effect
  proxy_config file_config_;
  guard_registry guards_;   // every route's guard state, kept across tables (proxy/guard_state.hpp)
  proxy_config effective_;  // file_config_ with overrides applied
  overrides_map overrides_;
  std::map<std::string, std::uint64_t, std::less<>> policy_generation_;
  std::uint64_t generation_ = 1;  // file loads that took effect
  std::uint64_t reloads_ok_ = 0;
  std::uint64_t reloads_error_ = 0;
  std::uint64_t tls_reloads_ok_ = 0;
  std::uint64_t tls_reloads_error_ = 0;
  std::unique_ptr<tls_cache> tls_;  // TLS contexts shared by the tables; refreshed by watch_certificates
  double start_time_ = 0;           // seconds since the epoch
  std::shared_ptr<const route_table> table_;
  health_map health_;
  std::map<std::string, std::pair<std::string, std::uint64_t>, std::less<>>
      health_checks_;  // cluster -> (signature, epoch)
  std::uint64_t health_epoch_ = 0;
  std::unique_ptr<access_logger> access_log_;  // before server_: workers write into its rings
  std::unique_ptr<server> server_;
  struct live_listener {
    host_port address;
    std::uint64_t id;
    std::uint16_t port = 0;  // the port bound (the OS's when the address says 0)
  };
  std::map<std::string, live_listener> listeners_;
  std::optional<boost::asio::ip::tcp::acceptor> admin_acceptor_;
  boost::asio::signal_set signals_{ctx_};
  std::optional<boost::asio::posix::stream_descriptor> watch_;  // inotify on the config's directory
  bool ready_ = false;
  bool draining_ = false;
  bool reloading_ = false;
  bool reload_again_ = false;
  bool reload_again_forced_ = false;  // a SIGHUP or an admin reload came during one: re-read even if unchanged
  int exit_code_ = 0;
};

}  // namespace vane::proxy
