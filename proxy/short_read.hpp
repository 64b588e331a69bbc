#pragma once
// A socket read that takes a short read as "nothing more to read now", as
// nginx does (ngx_unix_recv clears `ready` when recv returns less than asked).
//
// Asio's epoll reactor tries every read at once ("speculatively") before it
// waits for the socket, and only stops doing so after a read that returned
// 0 bytes. On a proxy that is a wasted recvfrom in two places per request:
// the upstream's answer is read just after the request went out, and the
// client's next request just after the answer went out — neither can be
// there yet. Under load (64 connections, bench/compare) vane made 4 recvfrom
// calls per proxied request where nginx and HAProxy make 2 (`perf stat -e
// syscalls:sys_enter_recvfrom`), on a machine where a syscall is the largest
// cost there is.
//
// Asio has no option for this, so a connection's socket (`short_read_socket`,
// which proxy_stream reads plain or lends to its TLS engine) reads into a
// buffer type of ours (`drained_when_short`, one mutable buffer), for which
// the reactor's receive operation is specialised: the same non-blocking recv
// as Asio's own, but a read that filled less than the buffer reports
// `done_and_exhausted`, so the reactor waits for the socket's next readiness
// event before the next read instead of trying it first. That is safe with
// edge-triggered epoll: the socket was empty when the short read returned, and
// any byte that arrives later raises a new event. This leans on
// boost::asio::detail (the base of reactive_socket_recv_op, unchanged in
// shape since Boost 1.66); Debian 12 ships Boost 1.81. Only the epoll reactor
// uses it: with Asio's io_uring backend the specialisation is never
// instantiated.
#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/reactive_socket_recv_op.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#include <type_traits>
#include <utility>

#include "proxy/executor.hpp"

namespace vane::proxy {

// One buffer to read into; a read that does not fill it drains the socket.
struct drained_when_short : boost::asio::mutable_buffer {
  explicit drained_when_short(boost::asio::mutable_buffer b) noexcept : boost::asio::mutable_buffer(b) {}
};

// A worker socket whose reads into one buffer take a short read as draining.
class short_read_socket : public worker_socket {
 public:
  explicit short_read_socket(const worker_executor& ex) : worker_socket(ex) {}
  explicit short_read_socket(worker_socket&& socket) : worker_socket(std::move(socket)) {}
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    if constexpr (std::is_convertible_v<const MutableBuffers&, boost::asio::mutable_buffer>)
      return worker_socket::async_read_some(drained_when_short(buffers), std::forward<Token>(token));
    else
      return worker_socket::async_read_some(buffers, std::forward<Token>(token));
  }
};

}  // namespace vane::proxy

namespace boost::asio::detail {

template <>
class reactive_socket_recv_op_base<vane::proxy::drained_when_short> : public reactor_op {
 public:
  reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                               socket_ops::state_type state, const vane::proxy::drained_when_short& buffer,
                               socket_base::message_flags flags, func_type complete_func)
      : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
        socket_(socket),
        state_(state),
        buffer_(buffer),
        flags_(flags) {}

  static status do_perform(reactor_op* base) {
    auto* o = static_cast<reactive_socket_recv_op_base*>(base);
    const bool stream = (o->state_ & socket_ops::stream_oriented) != 0;
    if (!socket_ops::non_blocking_recv1(o->socket_, o->buffer_.data(), o->buffer_.size(), o->flags_, stream, o->ec_,
                                        o->bytes_transferred_))
      return not_done;  // would block: the reactor waits for the socket
    // Asio's rule is "0 bytes (the end) exhausts"; ours adds "fewer than asked".
    if (stream && !o->ec_ && o->bytes_transferred_ < o->buffer_.size()) return done_and_exhausted;
    if (stream && o->bytes_transferred_ == 0) return done_and_exhausted;
    return done;
  }

 private:
  socket_type socket_;
  socket_ops::state_type state_;
  mutable_buffer buffer_;
  socket_base::message_flags flags_;
};

}  // namespace boost::asio::detail
