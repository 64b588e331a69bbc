#include "proxy/stream.hpp"

#include <boost/beast/core/error.hpp>

#include "proxy/coarse_clock.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

struct proxy_stream::deadline {
  explicit deadline(const worker_executor& ex) : timer(ex) {}
  worker_timer timer;
  worker_socket* socket = nullptr;                     // null once the stream is gone
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
}

proxy_stream::proxy_stream(const executor_type& ex) : socket_(ex), deadline_(std::make_shared<deadline>(ex)) {
  deadline_->socket = &socket_;
}

proxy_stream::~proxy_stream() {
  deadline_->socket = nullptr;
  deadline_->timer.cancel();
}

void proxy_stream::expires_after(clock::duration d) {
  deadline_->at = coarse_now() + coarse_slack() + d;  // never earlier than now() + d
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

proxy_stream::tls_stream& proxy_stream::start_tls(asio::ssl::context& ctx) {
  tls_ = std::make_unique<tls_stream>(std::move(socket_), ctx);
  deadline_->socket = &tls_->next_layer();
  return *tls_;
}

}  // namespace vane::proxy
