#include "control/supervise.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <exception>
#include <memory>

#include "common/log.hpp"

namespace vane::control {

namespace asio = boost::asio;

void supervise(asio::any_io_executor ex, supervised s) {
  auto shared = std::make_shared<supervised>(std::move(s));
  asio::co_spawn(ex, shared->start(), [ex, shared](std::exception_ptr e) {
    if (!e) return;
    std::string what = "an exception of unknown type";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      what = x.what();
    } catch (...) {
    }
    if (!shared->wanted()) {
      log::error("{} ended by an exception: {}; not restarted: it is no longer wanted", shared->who, what);
      return;
    }
    log::error("{} ended by an exception: {}; restarting it from its saved state", shared->who, what);
    if (shared->failed) shared->failed(what);
    auto timer = std::make_shared<asio::steady_timer>(ex, shared->pause);
    timer->async_wait([ex, shared, timer](const boost::system::error_code& ec) {
      if (ec || !shared->wanted()) return;
      supervise(ex, *shared);
    });
  });
}

}  // namespace vane::control
