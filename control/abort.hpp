#pragma once
// vane's fast abort (beyond Flagger): every second, the canary's requests and
// errors since the previous sample, summed over the proxies; at least
// minRequests with maxErrorRate % or more rolls back at once (run.hpp's
// abort_due). A pure function of the proxies' answers and the last samples.
#include <boost/json/object.hpp>
#include <chrono>
#include <map>
#include <optional>
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

// vane's proxy guard as the proxies report it (/stats/latency "guards"):
// how many have tripped the route's guard on the canary.
struct guard_sample {
  std::size_t tripped = 0;     // proxies whose guard on the canary tripped
  std::size_t proxies = 0;     // asked
  double error_percent = 0;    // over the tripped ones' windows, weighted by their requests
  std::uint64_t requests = 0;  // in those windows
};
guard_sample sample_guards(const canary_spec& spec, const std::vector<parsed<boost::json::object>>& answers);
// Why the run rolls back when a proxy's guard on the canary tripped ("proxy guard tripped on 2/3 proxies
// (error rate 64.00% >= 20%)"); nullopt when none did, or the Canary asks for no guard.
std::optional<std::string> guard_reason(const canary_spec& spec, const guard_sample& g);

}  // namespace vane::control
