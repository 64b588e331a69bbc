#pragma once
// vane's fast abort (beyond Flagger): every second, the canary's requests and
// errors since the previous sample, summed over the proxies; at least
// minRequests with maxErrorRate % or more rolls back at once (run.hpp's
// abort_due). A pure function of the proxies' answers and the last samples.
#include <boost/json/object.hpp>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "control/builtin.hpp"
#include "control/parse.hpp"
#include "control/spec.hpp"

namespace vane::control {

struct abort_sample {
  window canary;                      // the canary's upstream requests and errors since the last sample
  std::vector<std::string> problems;  // proxies whose answer could not be read (their share is missing, not zero)
};

// `answers[i]` is proxy `urls[i]`'s /stats/latency; `last` holds each proxy's
// previous snapshot and is updated. A proxy seen for the first time adds nothing.
abort_sample sample_abort(const canary_spec& spec, const std::vector<std::string>& urls,
                          const std::vector<parsed<boost::json::object>>& answers,
                          std::map<std::string, proxy_snapshot>& last, std::chrono::steady_clock::time_point now);

}  // namespace vane::control
