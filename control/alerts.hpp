#pragma once
// Alerts (Flagger's AlertProviders): each service's own JSON payload, and the
// posting of a message to every alert of a canary at or above its severity.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <string>
#include <vector>

#include "control/run.hpp"
#include "control/spec.hpp"

namespace vane::control {

// The JSON `provider` takes: msteams's MessageCard, discord's content, generic's fields, Slack's shape for the rest.
boost::json::object alert_payload(const alert_provider& provider, const canary_spec& c, const run_state& st,
                                  const std::string& message, const std::string& severity);

// Does an alert of `wanted` severity take a message of `severity`? (info < warn < error)
bool severity_reaches(const std::string& severity, const std::string& wanted);

// Posts the message to every alert of the canary whose severity it reaches; one "alert NAME to ADDRESS failed:
// why" per alert that did not take it.
boost::asio::awaitable<std::vector<std::string>> send_alerts(boost::asio::any_io_executor ex, canary_spec c,
                                                             run_state st, std::vector<alert_provider> providers,
                                                             std::string message, std::string severity);

}  // namespace vane::control
