#pragma once
// What the controller keeps of one Canary: its document, its run's state, and
// what it has seen (events, metric windows, last values, unreachable proxies,
// why readings are missing, when it last ticked).
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "control/abort.hpp"
#include "control/builtin.hpp"
#include "control/run.hpp"
#include "control/spec.hpp"

namespace vane::control {

struct canary_record {
  canary_spec spec;
  run_state state;
  run_state saved;                                   // as last written: where a failed loop starts again from
  std::deque<std::string> events;                    // recent, for the API
  std::map<std::string, proxy_history> history;      // per proxy admin URL
  std::map<std::string, proxy_snapshot> abort_last;  // per proxy, for the fast abort check
  std::uint64_t epoch = 0;                           // bumps when the spec changes: the old loop ends
  std::uint64_t successes = 0, failures = 0;
  std::map<std::string, double> metric_values;
  std::vector<std::string> unreachable;
  bool removed = false;                             // its document is gone: no loop runs, the API does not list it
  std::unique_ptr<boost::asio::steady_timer> wake;  // cancelled by API calls: the next tick comes at once
  std::vector<std::string> tick_reasons;            // why readings were missing, gathered during the current tick
  std::string reason;                               // the last tick's, joined: logged once per change, shown by status
  double last_tick = 0;                             // unix seconds the last tick ended; 0: none yet
  std::uint64_t loop_restarts = 0;                  // loops started again after an exception
  guard_sample guard;                               // the proxies' guard on the canary, at the latest reading
};

// An active run that has not ticked for more than 3 intervals (the watchdog).
bool stalled(const canary_record& c, double now);

}  // namespace vane::control
