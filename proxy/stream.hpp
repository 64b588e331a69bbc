#pragma once
// A connection's byte stream, plain TCP or TLS over it, decided at run time,
// with one deadline for whatever operation is pending.
//
// The proxy's relay code is written once against this type: each read or
// write goes to the TLS stream when there is one and to the socket otherwise,
// a predictable branch per operation. The other way, a template over the
// stream type, would compile the whole request path twice (or four times:
// downstream and upstream each plain or TLS).
//
// Deadlines: expires_after() only stores a time. One timer per connection is
// armed when a deadline comes earlier than the time it is armed for; when it
// fires before the deadline (which moved later meanwhile) it is armed again
// for it. Beast's tcp_stream instead arms, cancels and re-arms a timer around
// every read and write — about a twentieth of the proxy's instructions per
// request in a profile (docs/benchmarks.md) — and wraps each operation in
// layers of its own. When a deadline passes, the socket is closed (as Beast
// does): the pending operation ends with an error, that timed_out() turns
// into boost::beast::error::timeout.
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <memory>
#include <utility>

#include "proxy/executor.hpp"
#include "proxy/short_read.hpp"

namespace vane::proxy {

class proxy_stream {
 public:
  using tls_stream = boost::beast::ssl_stream<short_read_socket>;
  using executor_type = worker_executor;
  explicit proxy_stream(worker_socket socket);
  explicit proxy_stream(const executor_type& ex);
  ~proxy_stream();
  proxy_stream(const proxy_stream&) = delete;
  proxy_stream& operator=(const proxy_stream&) = delete;

  executor_type get_executor() noexcept { return tcp().get_executor(); }
  worker_socket& tcp() noexcept { return tls_ ? tls_->next_layer() : socket_; }
  worker_socket& socket() noexcept { return tcp(); }
  // The socket reads and writes go through (the TLS engine's next layer under TLS).
  short_read_socket& io() noexcept { return tls_ ? tls_->next_layer() : socket_; }

  // The operations from now until expires_never() (or the next
  // expires_after) must end within `d`. The I/O functions of the request path
  // (proxy/http1/io.hpp) call expires_never() once their operation is done, so
  // that a deadline covers an operation pending, as with Beast's tcp_stream.
  void expires_after(std::chrono::steady_clock::duration d);
  void expires_never();
  // `ec` as the caller should see it: the deadline's timeout when it passed.
  boost::system::error_code timed_out(boost::system::error_code ec) const noexcept;

  // Wraps the socket in TLS (before any byte is exchanged); the handshake is the caller's.
  tls_stream& start_tls(boost::asio::ssl::context& ctx);
  tls_stream* tls() noexcept { return tls_.get(); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    if (tls_) return tls_->async_read_some(buffers, std::forward<Token>(token));
    return socket_.async_read_some(buffers, std::forward<Token>(token));
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    if (tls_) return tls_->async_write_some(buffers, std::forward<Token>(token));
    return socket_.async_write_some(buffers, std::forward<Token>(token));
  }

 private:
  struct deadline;            // shared with the timer's handler, which may run after this stream is gone
  short_read_socket socket_;  // moved into tls_ by start_tls
  std::unique_ptr<tls_stream> tls_;
  std::shared_ptr<deadline> deadline_;
};

}  // namespace vane::proxy
