#pragma once
// vane-control's HTTP API: GET /ready, /metrics, /canaries, /canaries/NAME;
// POST /canaries/NAME/rollout|promote|abort|resume. The answer to a request
// is a function of the request and the controller's handlers (no socket), so
// it is tested alone; serve_api serves it on an acceptor with the HTTP server
// helper every vane API shares (common/http_server.hpp).
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/canary.hpp"

namespace vane::control {

// A command's effect on a run's state: nullopt when applied, else why it is refused (409).
// rollout: optional {"revision": R}; promote; abort; resume.
std::optional<std::string> apply_command(const canary_spec& spec, run_state& st, std::string_view action,
                                         const boost::json::object& body);

struct api_handlers {
  std::function<bool()> ready;
  std::function<std::string()> metrics;                   // the /metrics text
  std::function<std::vector<canary_record*>()> canaries;  // the listed ones
  std::function<boost::json::object(const canary_record&)> status;
  // Runs an action on a canary (the state changes, is saved, the loop wakes): nullopt, or why not.
  std::function<std::optional<std::string>(canary_record&, std::string_view action, const boost::json::object& body)>
      command;
};

struct api_answer {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
};

api_answer answer_api(const api_handlers& h, std::string_view method, std::string_view target, std::string_view body);

// Accepts until the acceptor is closed; connections are kept alive when the
// client asks; a body over 1MiB is a 413, a request that does not parse a 400.
boost::asio::awaitable<void> serve_api(boost::asio::ip::tcp::acceptor& acceptor, const api_handlers& h);

}  // namespace vane::control
