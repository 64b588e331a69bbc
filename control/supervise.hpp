#pragma once
// Supervision of vane-control's long-lived coroutines (a canary's analysis
// loop, its abort loop, the document watcher, the API): a loop that ends by
// an exception is logged with its name and started again, from its saved
// state, after a pause — never left dead and silent.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "common/units.hpp"

namespace vane::control {

struct supervised {
  std::string who;                                      // "canary app.test: analysis loop", for the log
  std::function<boost::asio::awaitable<void>()> start;  // the loop, from the state it finds
  std::function<bool()> wanted = [] { return true; };   // false: its canary is gone, it stays ended
  std::function<void(const std::string& what)> failed;  // after an exception, before the restart
  duration pause = std::chrono::seconds(1);
};

// Spawns the loop on `ex`; a normal end is final, an exception restarts it.
void supervise(boost::asio::any_io_executor ex, supervised s);

}  // namespace vane::control
