#pragma once
// One HTTP/2 response as vane-demo's handlers write it (HTTP endpoints and
// gRPC calls); h2_server.cpp implements it on an nghttp2 stream.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string_view>
#include <utility>
#include <vector>

namespace vane::demo {

using header_list = std::vector<std::pair<std::string_view, std::string_view>>;

class h2_response {
 public:
  virtual ~h2_response() = default;
  // Submits the head (lower-case names; copied). `end`: nothing follows (END_STREAM on HEADERS).
  virtual void head(unsigned status, const header_list& fields, bool end) = 0;
  // Queues body bytes; waits while too much is queued (the client's window
  // decides how fast it goes). False once the stream is gone.
  virtual boost::asio::awaitable<bool> write(std::string_view data) = 0;
  // Ends the response (with these trailers unless empty) and waits until all
  // of it went out. False when the stream went first.
  virtual boost::asio::awaitable<bool> end(const header_list& trailers) = 0;
  // RST_STREAM (INTERNAL_ERROR) instead of an answer.
  virtual void reset() = 0;
  // The stream is closed: the client reset it, or the connection ended.
  virtual bool gone() const = 0;
  virtual boost::asio::awaitable<void> wait_gone() = 0;
  // Waits this long (--latency), or until the stream is gone.
  virtual boost::asio::awaitable<void> pause(std::chrono::milliseconds d) = 0;
};

}  // namespace vane::demo
