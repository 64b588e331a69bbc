#pragma once
// A socket read that knows when it drained the socket, so that the next read
// waits for the socket instead of trying a recv first, as nginx's does.
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
// A read that returns fewer bytes than asked is not enough to know: the
// peer's end (FIN) may have come with the last bytes, in the same readiness
// event, and edge-triggered epoll raises no new event for it. A read that
// took it for draining then waited for that end until its deadline (nginx
// learns of such an end from EPOLLRDHUP, which Asio does not ask for).
// Linux says it exactly instead: with TCP_INQ set on the socket
// (`enable_read_hints`, once per connection), each recvmsg returns how many
// bytes are left to read, and more than none when the end is pending. A read
// that leaves 0 drained the socket: any later byte, or the end, raises a new
// event. Without the hint (TCP_INQ refused), Asio's own rule stays.
//
// Asio has no option for this, so a connection's socket (`short_read_socket`,
// which proxy_stream reads plain or lends to its TLS engine) reads into a
// buffer type of ours (`drained_when_short`, one mutable buffer), for which
// the reactor's receive operation is specialised: the same non-blocking
// receive as Asio's own (recvmsg, to get the hint), reporting
// `done_and_exhausted` when the hint says the socket is drained. This leans
// on boost::asio::detail (the base of reactive_socket_recv_op, unchanged in
// shape since Boost 1.66); Debian 12 ships Boost 1.81. Only the epoll reactor
// uses it: with Asio's io_uring backend the specialisation is never
// instantiated.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/reactive_socket_recv_op.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#include <boost/asio/error.hpp>
#include <cerrno>
#include <cstring>
#include <type_traits>
#include <utility>

#include "proxy/executor.hpp"

namespace vane::proxy {

// Asks the kernel to tell each read how much is left to read (TCP_INQ, Linux
// 4.18). False when it refuses: the reads then try at once, as Asio's do.
inline bool enable_read_hints(worker_socket& s) noexcept {
  const int on = 1;
  return ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_INQ, &on, sizeof on) == 0;
}

// One buffer to read into, on a socket whose reads may say when they drained it.
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
    iovec iov{o->buffer_.data(), o->buffer_.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = 0;
    do {
      n = ::recvmsg(o->socket_, &msg, o->flags_);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;  // the reactor waits for the socket
      o->ec_ = boost::system::error_code(errno, boost::asio::error::get_system_category());
      o->bytes_transferred_ = 0;
      return done;
    }
    o->ec_ = {};
    o->bytes_transferred_ = static_cast<std::size_t>(n);
    const bool stream = (o->state_ & socket_ops::stream_oriented) != 0;
    if (stream && n == 0) {  // the end (Asio's rule: it exhausts)
      if (o->buffer_.size() > 0) o->ec_ = boost::asio::error::eof;
      return done_and_exhausted;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != IPPROTO_TCP || c->cmsg_type != TCP_CM_INQ) continue;
      int left = 0;
      std::memcpy(&left, CMSG_DATA(c), sizeof left);
      if (left == 0) return done_and_exhausted;  // drained: the next byte, or the end, raises an event
    }
    return done;  // no hint, or more to read (the end included)
  }

 private:
  socket_type socket_;
  socket_ops::state_type state_;
  mutable_buffer buffer_;
  socket_base::message_flags flags_;
};

}  // namespace boost::asio::detail
