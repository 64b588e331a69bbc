#pragma once
// spec.promote: making the primary run the new revision, by a command (exit 0)
// or a URL (2xx). The controller holds no cluster credentials.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <string>

#include "control/spec.hpp"

namespace vane::control {

struct promotion_result {
  bool ok = false;
  std::string failure;  // the event line when it failed (with the end of a command's output)
};

// Runs c.promote for `revision`: the command with VANE_CANARY, VANE_NAMESPACE, VANE_REVISION in its environment,
// in a process group of its own that is killed after promote.timeout (its output kept for the failure's
// text, not mixed into the controller's); or a POST of {name, namespace, revision, primary, canary} to the URL.
boost::asio::awaitable<promotion_result> promote_primary(boost::asio::any_io_executor ex, canary_spec c,
                                                         std::string revision);

}  // namespace vane::control
