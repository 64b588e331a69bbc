#pragma once
// Flagger's webhooks: the payload every type gets, the gate and check calls of
// a tick (a 200-202 answer passes; anything else, or no answer, is its detail),
// and `event` webhooks, posted for every event line without waiting.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <string>
#include <vector>

#include "control/run.hpp"
#include "control/spec.hpp"

namespace vane::control {

// {"name", "namespace", "phase", "checksum", "metadata"} as Flagger sends it.
boost::json::object hook_payload(const canary_spec& c, const run_state& st, boost::json::object metadata);

// Every webhook of the type, in order, with its answer.
boost::asio::awaitable<std::vector<hook_result>> call_hooks(boost::asio::any_io_executor ex, canary_spec c,
                                                            run_state st, std::string type);

// Posts the event to every `event` webhook of the canary; nothing waits for the answers.
void post_event(boost::asio::any_io_executor ex, const canary_spec& c, const run_state& st, const std::string& message);

}  // namespace vane::control
