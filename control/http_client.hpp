#pragma once
// vane-control's HTTP/1.1 client (Beast, coroutines): the proxies' admin API,
// webhooks, alert providers, Prometheus. One connection per call: calls are
// a few per proxy per tick, so pooling would buy nothing worth its state.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/address.hpp"
#include "common/units.hpp"

namespace vane::control {

using vane::http_url;
using vane::parse_http_url;

struct http_result {
  int status = 0;  // 0: no answer (see error)
  std::string body;
  std::string error;  // connect failure, timeout, ...
};

boost::asio::awaitable<http_result> http_call(boost::asio::any_io_executor ex, const http_url& url, std::string method,
                                              std::string target, std::string body, duration timeout,
                                              std::vector<std::pair<std::string, std::string>> headers);
// (GCC 12: pass named variables, never temporaries, to a coroutine in a co_await expression.)

}  // namespace vane::control
