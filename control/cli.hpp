#pragma once
// What vane-control's command-line client shows of the controller's JSON
// status: the `status` table, and `watch`'s event lines and progress line.
// Pure functions of the answer, so they are unit-tested without a server.
#include <boost/json/fwd.hpp>
#include <string>
#include <vector>

namespace vane::control {

// One row per canary (NAME, PHASE, WEIGHT with a bar, FAILED, ITER, LAST EVENT), header first.
std::string status_table(const boost::json::value& answer);

// "app.test  Progressing  [######--------------]  30%  success 99.80%  p99 12.3ms  failed 0/2"
std::string progress_line(const boost::json::object& status);

// What `watch` prints a new progress line for when not on a terminal: phase, weight, failed checks.
std::string progress_key(const boost::json::object& status);

// Follows one canary's status answers for `vane-control watch`.
class canary_watch {
 public:
  // Feeds one status answer: returns the events not printed yet (oldest first);
  // on the first answer, the run's events so far if one is in progress, none otherwise.
  std::vector<std::string> new_events(const boost::json::object& status);
  // True once a run has ended after the watch began: the phase is Succeeded
  // or Failed, and either a run was seen in progress or the phase changed
  // since the first answer (a run may start and end between two polls).
  bool finished(const boost::json::object& status);

 private:
  std::string last_event_;
  bool shown_any_ = false;
  bool first_ = true;
  bool seen_active_ = false;
  std::string first_transition_;
};

}  // namespace vane::control
