#pragma once
// Flagger's webhooks: the payload every type gets, the gate and check calls of
// a tick (a 200-202 answer passes; anything else, or no answer, is its detail),
// and `event` webhooks, posted for every event line in order without holding up the analysis.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "control/run.hpp"
#include "control/spec.hpp"

namespace vane::control {

// {"name", "namespace", "phase", "checksum", "metadata"} as Flagger sends it.
boost::json::object hook_payload(const canary_spec& c, const run_state& st, boost::json::object metadata);

// Every webhook of the type, in order, with its answer.
boost::asio::awaitable<std::vector<hook_result>> call_hooks(boost::asio::any_io_executor ex, canary_spec c,
                                                            run_state st, std::string type);

// Flagger's word for an event: Warning for a halt, a rollback, a failure; Normal otherwise.
bool warning_event(std::string_view message);

// An event webhook's metadata: eventMessage, eventType, timestamp (Unix milliseconds, as text), then the
// hook's own metadata (which does not replace those three).
boost::json::object event_metadata(const webhook_spec& hook, const std::string& message, std::int64_t unix_ms);

// Posts events to every `event` webhook of their canary without holding up the analysis: one at a time
// and in order for each canary (a slow receiver of one canary delays no other's); a failed post is
// logged. Shared with the coroutines that send (they outlive a reload).
class event_outbox : public std::enable_shared_from_this<event_outbox> {
 public:
  static constexpr std::size_t max_queued = 1000;  // per canary; past it the oldest is dropped (and logged)
  void post(const boost::asio::any_io_executor& ex, const canary_spec& c, const run_state& st,
            const std::string& message);

 private:
  struct pending {
    std::string hook, url;
    duration timeout;
    std::string body;
  };
  struct lane {
    std::deque<pending> queue;
    bool sending = false;
  };
  static boost::asio::awaitable<void> drain(boost::asio::any_io_executor ex, std::shared_ptr<event_outbox> self,
                                            std::string canary);
  std::map<std::string, lane> lanes_;  // by canary
};

}  // namespace vane::control
