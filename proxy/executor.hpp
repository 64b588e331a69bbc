#pragma once
// The types of the request path, on the worker's concrete executor.
//
// Asio's default executor is the type-erased `any_io_executor`: every
// coroutine suspension, I/O operation and timer copies, moves, compares and
// destroys one through a table of function pointers — about 7% of the
// proxy's user-space instructions per request in a callgrind profile. A worker
// runs on one io_context, so its connections, pools, timers and coroutines
// name that io_context's executor type instead and the calls inline.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

namespace vane::proxy {

using worker_executor = boost::asio::io_context::executor_type;
template <class T = void>
using task = boost::asio::awaitable<T, worker_executor>;
using worker_socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, worker_executor>;
using worker_timer =
    boost::asio::basic_waitable_timer<std::chrono::steady_clock, boost::asio::wait_traits<std::chrono::steady_clock>,
                                      worker_executor>;
// A completion token for a task: the error code comes back in a tuple, no exception.
inline constexpr auto task_nothrow = boost::asio::as_tuple(boost::asio::use_awaitable_t<worker_executor>{});

}  // namespace vane::proxy
