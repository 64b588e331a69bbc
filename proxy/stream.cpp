#include "proxy/stream.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>

#include "proxy/pass_writes.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

struct proxy_stream::deadline {
  explicit deadline(const worker_executor& ex) : timer(ex) {}
  worker_timer timer;
  worker_socket* socket = nullptr;                     // null once the stream is gone
  proxy_stream* owner = nullptr;                       // (valid while `socket` is not null)
  clock::time_point at = clock::time_point::max();     // when the pending operation must have ended
  clock::time_point armed = clock::time_point::max();  // what the timer waits for (max: not waiting)
  bool expired = false;

  static void arm(const std::shared_ptr<deadline>& d) {
    d->armed = d->at;
    d->timer.expires_at(d->armed);
    d->timer.async_wait([d](boost::system::error_code ec) {
      if (ec || !d->socket) return;  // cancelled, or the stream is gone
      d->armed = clock::time_point::max();
      if (d->at == clock::time_point::max()) return;  // no deadline any more
      if (clock::now() < d->at) {
        arm(d);  // the deadline moved later meanwhile
        return;
      }
      d->expired = true;
      boost::system::error_code ignored;
      d->socket->close(ignored);
    });
  }
};

proxy_stream::proxy_stream(worker_socket socket)
    : socket_(std::move(socket)), deadline_(std::make_shared<deadline>(socket_.get_executor())) {
  deadline_->socket = &socket_;
  deadline_->owner = this;
}

proxy_stream::proxy_stream(const executor_type& ex) : socket_(ex), deadline_(std::make_shared<deadline>(ex)) {
  deadline_->socket = &socket_;
  deadline_->owner = this;
}

namespace {

// What a closing connection still had to write, written by itself: the
// connection's socket and bytes, until they are out or 30 s have passed (as
// nginx's lingering close gives a slow client time to take a last answer).
struct last_writes {
  last_writes(worker_socket s, std::string b)
      : socket(std::move(s)), bytes(std::move(b)), timer(socket.get_executor()) {}
  worker_socket socket;
  std::string bytes;
  worker_timer timer;

  static void start(const std::shared_ptr<last_writes>& l) {
    l->timer.expires_after(std::chrono::seconds(30));
    l->timer.async_wait([l](boost::system::error_code ec) {
      boost::system::error_code ignored;
      if (!ec) l->socket.close(ignored);
    });
    asio::async_write(l->socket, asio::buffer(l->bytes), [l](boost::system::error_code, std::size_t) {
      boost::system::error_code ignored;
      l->socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      l->timer.cancel();
    });
  }
};

}  // namespace

proxy_stream::~proxy_stream() {
  deadline_->socket = nullptr;
  deadline_->owner = nullptr;
  deadline_->timer.cancel();
  if (queued_)
    if (pass_writes* pass = pass_writes::current()) pass->remove(this);
  if (pending_.empty() || tls_ || !socket_.is_open()) return;
  boost::system::error_code ec;
  if (write_pending(ec) || ec) return;
  if (waiting_) socket_.cancel(ec);  // (its handler sees the stream gone)
  last_writes::start(std::make_shared<last_writes>(std::move(socket_), std::move(pending_)));
}

std::size_t proxy_stream::defer(std::span<const asio::const_buffer> buffers) {
  // Heads and small bodies: a large write would cost a copy for nothing.
  static constexpr std::size_t most = std::size_t{16} * 1024;
  if (tls_ || waiting_ || failed_) return 0;
  pass_writes* pass = pass_writes::current();
  if (!pass) return 0;
  std::size_t total = 0;
  for (const auto& b : buffers) total += b.size();
  if (total > most || pending_.size() + total > 4 * most) return 0;
  if (!queued_) {
    pass->add(this);
    queued_ = true;
  }
  for (const auto& b : buffers) pending_.append(static_cast<const char*>(b.data()), b.size());
  return total;
}

bool proxy_stream::write_pending(boost::system::error_code& ec) {
  ec = failed_;
  if (ec) return false;
  if (!socket_.non_blocking()) socket_.non_blocking(true, ec);  // a write that cannot finish: would_block
  std::size_t done = 0;
  while (!ec && done < pending_.size())
    done += socket_.write_some(asio::buffer(pending_.data() + done, pending_.size() - done), ec);
  pending_.erase(0, done);
  if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
  if (ec) fail(ec);
  return pending_.empty() && !ec;
}

void proxy_stream::fail(boost::system::error_code ec) {
  failed_ = ec;
  pending_.clear();
  // A read waiting on this socket ends: its coroutine finds the connection over.
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
}

void proxy_stream::flush_pass() {
  queued_ = false;
  if (waiting_ || pending_.empty()) return;
  boost::system::error_code ec;
  if (write_pending(ec)) {
    if (shutdown_send_) socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  if (!ec) wait_for_room();
}

void proxy_stream::wait_for_room() {
  waiting_ = true;
  socket_.async_wait(asio::socket_base::wait_write, [d = deadline_](boost::system::error_code ec) {
    if (!d->socket) return;  // the stream is gone
    proxy_stream& s = *d->owner;
    s.waiting_ = false;
    if (ec) {
      if (!s.pending_.empty()) s.fail(ec);
      return;
    }
    boost::system::error_code wec;
    if (s.write_pending(wec)) {
      if (s.shutdown_send_) s.socket_.shutdown(asio::ip::tcp::socket::shutdown_send, wec);
      return;
    }
    if (!wec) s.wait_for_room();
  });
}

void proxy_stream::shutdown_send_after_writes() {
  boost::system::error_code ec;
  if (pending_.empty() || tls_) {
    tcp().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  shutdown_send_ = true;
}

void proxy_stream::expires_after(clock::duration d) {
  deadline_->at = clock::now() + d;
  deadline_->expired = false;
  if (deadline_->at < deadline_->armed) {
    if (deadline_->armed != clock::time_point::max()) deadline_->timer.cancel();
    deadline::arm(deadline_);
  }
}

void proxy_stream::expires_never() {
  deadline_->at = clock::time_point::max();  // `expired` stays, for timed_out() of the operation that ended
}

boost::system::error_code proxy_stream::timed_out(boost::system::error_code ec) const noexcept {
  if (ec && deadline_->expired) return boost::beast::error::timeout;
  return ec;
}

void pass_writes::flush() {
  flushing_.swap(streams_);
  for (proxy_stream* s : flushing_)
    if (s) s->flush_pass();
  flushing_.clear();
}

proxy_stream::tls_stream& proxy_stream::start_tls(asio::ssl::context& ctx) {
  tls_ = std::make_unique<tls_stream>(tls_socket(std::move(socket_)), ctx);
  deadline_->socket = &tls_->next_layer();
  return *tls_;
}

}  // namespace vane::proxy
