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
// A reset (RST) is not in the hint: with the last bytes and a reset both
// pending, the read that takes the bytes is told 0 left, and the reset's
// event is spent. So the hint is trusted only up to the next write, which
// meets the reset (it fails). A read that follows a read, with no write on the
// socket between them, tries a recv first (Asio's own rule): a partial head,
// a body's next piece, a TLS record's rest. A proxy's turnarounds (the answer
// read after the request went out, the next request after the answer) keep
// the saving.
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

#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/reactive_socket_recv_op.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>
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

// What a socket's reads and writes tell its next read.
struct read_hint_state {
  bool drained = false;  // the last read drained the socket by the kernel's hint
  bool wrote = false;    // a write since then
};

// One buffer to read into, on a socket whose reads may say when they drained
// it (noted in `state`: the reactor will wait for the next event before it
// reads again).
struct drained_when_short : boost::asio::mutable_buffer {
  drained_when_short(boost::asio::mutable_buffer b, read_hint_state* state) noexcept
      : boost::asio::mutable_buffer(b), state(state) {}
  read_hint_state* state;
};

// A worker socket whose reads into one buffer may take the kernel's word that
// they drained it (see above). Its writes go through it (async_write_some,
// write_some) so that it knows a read follows a read.
class short_read_socket : public worker_socket {
 public:
  explicit short_read_socket(const worker_executor& ex) : worker_socket(ex) {}
  explicit short_read_socket(worker_socket&& socket) : worker_socket(std::move(socket)) {}
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    if constexpr (std::is_convertible_v<const MutableBuffers&, boost::asio::mutable_buffer>) {
      const boost::asio::mutable_buffer b(buffers);
      // A read of nothing is Asio's no-op (the TLS engine's way to complete
      // through the executor): no recv, the hint untouched.
      if (b.size() == 0) return worker_socket::async_read_some(b, std::forward<Token>(token));
      // The hint kept the reactor from trying, and no write met a reset since: try here.
      const bool check = hint_.drained && !hint_.wrote;
      hint_.drained = false;
      boost::system::error_code ec;
      std::size_t n = 0;
      if (check && try_now(b, ec, n)) {  // done at once: the handler runs as a completion would
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
            [](auto handler, const worker_executor& ex, boost::system::error_code e, std::size_t got) {
              boost::asio::post(ex, boost::asio::append(std::move(handler), e, got));
            },
            token, get_executor(), ec, n);
      }
      return worker_socket::async_read_some(drained_when_short(b, &hint_), std::forward<Token>(token));
    } else {
      return worker_socket::async_read_some(buffers, std::forward<Token>(token));
    }
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    hint_.wrote = hint_.wrote || boost::asio::buffer_size(buffers) > 0;  // (none: no send is made)
    return worker_socket::async_write_some(buffers, std::forward<Token>(token));
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers, boost::system::error_code& ec) {
    hint_.wrote = hint_.wrote || boost::asio::buffer_size(buffers) > 0;
    return worker_socket::write_some(buffers, ec);
  }

 private:
  // A non-blocking recv: true with its outcome when it has one (bytes, the
  // end, an error), false when nothing is there yet.
  bool try_now(boost::asio::mutable_buffer b, boost::system::error_code& ec, std::size_t& n) noexcept {
    ssize_t got = 0;
    do {
      got = ::recv(native_handle(), b.data(), b.size(), MSG_DONTWAIT);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      ec = boost::system::error_code(errno, boost::asio::error::get_system_category());
      return true;
    }
    n = static_cast<std::size_t>(got);
    if (got == 0 && b.size() > 0) ec = boost::asio::error::eof;
    return true;
  }

  read_hint_state hint_;
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
        state_hint_(buffer.state),
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
      if (left == 0) {  // drained: the next byte, or the end, raises an event (a reset: see above)
        *o->state_hint_ = vane::proxy::read_hint_state{true, false};
        return done_and_exhausted;
      }
    }
    return done;  // no hint, or more to read (the end included)
  }

 private:
  socket_type socket_;
  socket_ops::state_type state_;
  mutable_buffer buffer_;
  vane::proxy::read_hint_state* state_hint_;
  socket_base::message_flags flags_;
};

}  // namespace boost::asio::detail
