#pragma once
// One canary's analysis run: Flagger's state machine, apart from the world it
// acts on. Everything it reads or does outside goes through run_env — the
// controller's talks to the proxies, webhooks and Prometheus; the unit
// tests' is scripted, with a fake clock.
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/phase.hpp"
#include "control/spec.hpp"

namespace vane::control {

// Where a canary's run is, saved in the state file.
struct run_state {
  canary_phase phase = canary_phase::initialized;
  std::string revision;          // of the current (or last) run
  std::string pending_revision;  // from `rollout --revision`, over the spec's
  // The spec's revision as the last tick saw it: only a change of it starts a run, so that a revision
  // given to `rollout` is not undone by the file's older one at the next tick.
  std::string spec_revision;
  // The last push did not reach every proxy: no step until one does. Not saved: true after a restart,
  // until the first push (a proxy restarted meanwhile lost its overrides).
  bool traffic_unsure = true;
  std::uint32_t weight = 0;  // canary weight now
  std::uint32_t failed_checks = 0;
  std::uint32_t iterations = 0;
  std::uint32_t steps = 0;  // stepWeights entries done
  std::string affinity_value;
  bool pre_rollout_done = false;
  bool promote_confirmed = false;    // `promote` received
  bool primary_promoted = false;     // the primary runs the new revision
  std::int64_t promoting_since = 0;  // unix seconds
  bool promotion_in_flight = false;  // spec.promote is running: no rollback, no abort meanwhile (not saved)
  std::string last_transition;
  std::string gate_alerted;  // the gate whose hold was alerted (once per hold)
  // Flagger's first sight done: the revision seen then is the baseline (no run for it).
  bool initialized = false;
};

struct hook_result {
  std::string name;
  bool pass = false;   // 200-202
  std::string detail;  // "status 500", "timeout ...", for the event line
};

struct metric_reading {
  std::optional<double> value;  // none: "no values found"
  bool inconclusive = false;    // halts without a failed check
  std::string why;
};

// The canary's workload (vane-control --kubernetes: the target Deployment scaled up and rolled out).
struct workload_readiness {
  bool ready = true;
  std::string waiting;                 // why not yet: an event line
  std::optional<std::string> failure;  // it never will be (progress deadline): the rollback's reason
};

class run_env {
 public:
  virtual ~run_env() = default;
  // Every webhook of the type, in order, with its answer.
  virtual boost::asio::awaitable<std::vector<hook_result>> call_hooks(std::string type) = 0;
  // Fresh readings for this tick's metrics (the proxies' stats), before read_metric.
  virtual boost::asio::awaitable<void> refresh() = 0;
  // Why the run must roll back now because the proxies' guard on the canary tripped (vane), from the
  // latest readings; nullopt: it has not.
  virtual std::optional<std::string> guard_tripped() = 0;
  // A metric's value; `mirror`: read the mirror series (the canary only gets copies).
  virtual boost::asio::awaitable<metric_reading> read_metric(const metric_spec& m, bool mirror) = 0;
  // Puts the desired traffic on every proxy.
  // PUTs the traffic to every proxy; true when every one took it.
  virtual boost::asio::awaitable<bool> push(boost::json::object traffic) = 0;
  virtual boost::asio::awaitable<bool> primary_healthy() = 0;
  // Before the analysis of a new revision: is the canary's workload up? Always, when nothing deploys it
  // (file mode: the user runs the canary).
  virtual boost::asio::awaitable<workload_readiness> canary_ready() { co_return workload_readiness{}; }
  // Runs spec.promote (command or URL); true when it succeeded.
  virtual boost::asio::awaitable<bool> promote() = 0;
  virtual boost::asio::awaitable<void> alert(std::string message, std::string severity) = 0;
  virtual void event(const std::string& message) = 0;
  virtual void changed() = 0;  // the state changed: persist it
  virtual void finished(bool succeeded) = 0;
  virtual std::int64_t now() = 0;  // unix seconds
  virtual std::string new_affinity_value() = 0;
};

bool run_active(const run_state& st);
// A percentage for JSON: a whole one as an integer (20, not Boost.JSON's 2E1).
boost::json::value percent_value(double p);
// Is the canary getting only mirrored traffic now (mirror series analysed)?
bool mirroring(const canary_spec& s, const run_state& st);
// Every field of the route's traffic the controller manages, for this state.
boost::json::object desired_traffic(const canary_spec& s, const run_state& st);
// How long until the next tick (the current stepWeights entry's own interval, or analysis.interval).
duration next_interval(const canary_spec& s, const run_state& st);
// vane's abort: an error share of at least maxErrorRate % over at least minRequests.
bool abort_due(const canary_spec& s, std::uint64_t total, std::uint64_t errors);

class canary_run {
 public:
  canary_run(const canary_spec& spec, run_state& state, run_env& env) : s_(spec), st_(state), env_(env) {}
  // One analysis interval: starts a run on a new revision, then does what the phase asks.
  boost::asio::awaitable<void> tick();
  boost::asio::awaitable<void> rollback(std::string reason);

 private:
  void start_run(const std::string& revision);
  void set_phase(canary_phase phase);
  // PUTs the traffic the state asks for to every proxy; traffic_unsure says whether one missed it.
  boost::asio::awaitable<void> push_traffic();
  // After a wait in progressing(): true when the run was rolled back meanwhile, or an abort asked for
  // it (then rolled back now).
  boost::asio::awaitable<bool> ended_meanwhile();
  // Calls the rollback webhooks; true when the run was rolled back (by one, or meanwhile).
  boost::asio::awaitable<bool> rolled_back_by_hook();
  boost::asio::awaitable<void> progressing();
  boost::asio::awaitable<void> waiting_promotion();
  boost::asio::awaitable<void> promoting();
  // The tick's checks: fresh readings, the proxies' guard, every metric. False: a check failed (or is
  // inconclusive); rollback_now_ says when that ends the run at once.
  boost::asio::awaitable<bool> analysis_passes();
  // Rolls back now if the guard tripped (rollback_now_) or the failed checks reached the threshold, unless
  // the run is no longer analysed (the abort loop rolled it back while the tick awaited readings).
  boost::asio::awaitable<void> rollback_if_due();
  // All hooks of the type pass (true when there are none); logs as Flagger does.
  boost::asio::awaitable<bool> hooks_pass(std::string type);

  const canary_spec& s_;
  run_state& st_;
  run_env& env_;
  std::optional<std::string> rollback_now_;
};

}  // namespace vane::control
