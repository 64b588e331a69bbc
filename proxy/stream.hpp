#pragma once
// A connection's byte stream, plain TCP or TLS over it, decided at run time.
//
// The proxy's relay code (Beast's parser and serializer, our head reader)
// is written once against this type: each read or write goes to the TLS
// stream when there is one and to the TCP stream otherwise, a predictable
// branch per operation. The other way, a template over the stream type,
// would compile the whole request path twice (or four times: downstream and
// upstream each plain or TLS), and Beast's templates are the build's cost.
// Timeouts stay on the TCP layer (beast::tcp_stream), under TLS too.
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <memory>
#include <utility>

#include "proxy/executor.hpp"

namespace vane::proxy {

class proxy_stream {
 public:
  using tls_stream = boost::beast::ssl_stream<worker_tcp_stream>;
  using executor_type = worker_executor;

  explicit proxy_stream(worker_socket socket) : tcp_(std::move(socket)) {}
  explicit proxy_stream(const executor_type& ex) : tcp_(ex) {}

  executor_type get_executor() noexcept { return tcp().get_executor(); }
  worker_tcp_stream& tcp() noexcept { return tls_ ? boost::beast::get_lowest_layer(*tls_) : tcp_; }
  worker_socket& socket() noexcept { return tcp().socket(); }
  void expires_after(std::chrono::steady_clock::duration d) { tcp().expires_after(d); }
  void expires_never() { tcp().expires_never(); }

  // Wraps the TCP stream in TLS (before any byte is exchanged); the handshake is the caller's.
  tls_stream& start_tls(boost::asio::ssl::context& ctx) {
    tls_ = std::make_unique<tls_stream>(std::move(tcp_), ctx);
    return *tls_;
  }
  tls_stream* tls() noexcept { return tls_.get(); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    if (tls_) return tls_->async_read_some(buffers, std::forward<Token>(token));
    return tcp_.async_read_some(buffers, std::forward<Token>(token));
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    if (tls_) return tls_->async_write_some(buffers, std::forward<Token>(token));
    return tcp_.async_write_some(buffers, std::forward<Token>(token));
  }

 private:
  worker_tcp_stream tcp_;  // moved into tls_ by start_tls
  std::unique_ptr<tls_stream> tls_;
};

}  // namespace vane::proxy
