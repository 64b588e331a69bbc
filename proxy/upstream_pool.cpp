#include "proxy/upstream_pool.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.hpp"
#include "proxy/coarse_clock.hpp"
#include "proxy/http2/client.hpp"
#include "proxy/tls.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
using clock = std::chrono::steady_clock;
constexpr auto nothrow = task_nothrow;

// A request waiting for a connection. It lives in the waiting coroutine's frame;
// release() hands it either a connection or the right to open one, then wakes it.
struct upstream_pool::waiter {
  explicit waiter(upstream_pool& p) : pool(p), timer(p.ex_) {}
  ~waiter() {
    // A frame destroyed while queued (worker shutting down) must not stay linked.
    auto it = std::find(pool.waiters_.begin(), pool.waiters_.end(), this);
    if (it != pool.waiters_.end()) pool.waiters_.erase(it);
  }
  upstream_pool& pool;
  worker_timer timer;
  bool granted = false;
  upstream_ptr conn;  // set when granted a reusable connection; empty: open a new one
};

upstream_pool::upstream_pool(const worker_executor& ex, const cluster_target& cluster, duration idle_timeout)
    : ex_(ex), cluster_(cluster), idle_timeout_(idle_timeout), idle_(cluster.endpoints.size()) {}

upstream_pool::~upstream_pool() = default;

h2_upstream& upstream_pool::h2() {
  if (!h2_) h2_ = std::make_unique<h2_upstream>(*this);
  return *h2_;
}

namespace {

// A non-blocking peek at the connection's socket: recv(2)'s answer for one byte (errno set when < 0).
ssize_t peek_one(upstream_connection& c) {
  char byte;
  return ::recv(c.stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
}

// The peek at a pooled connection before it is used again: EAGAIN
// from a live one; 0 (FIN), data or an error from one the upstream closed,
// reset or wrote to after its answer (a body on a HEAD's answer, more than
// its Content-Length). Such bytes would be read as the next request's answer,
// and every later answer on the connection would go to the client after.
bool nothing_to_read(upstream_connection& c) { return peek_one(c) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK); }

}  // namespace

bool answer_waiting(upstream_connection& c) {
  // Bytes received before a reset are still read before it (Linux keeps them queued).
  return c.buffer.size() > 0 || peek_one(c) > 0;
}

upstream_ptr upstream_pool::take_idle(std::size_t endpoint) {
  const auto now = coarse_now();  // idle ages are compared with idle_since, also coarse
  auto& idle = idle_[endpoint];
  while (!idle.empty()) {
    upstream_ptr c = std::move(idle.back());
    idle.pop_back();
    --idle_count_;
    // Drop connections idle too long, or closed or written to by the
    // upstream. Every reuse is peeked (found by a review; it costs about 3%
    // of saturation against skipping the peek for connections idle under
    // 250 ms, and watching idle connections through the event loop instead
    // misses bytes that came since its last wait, docs/benchmarks.md).
    if (now - c->idle_since < idle_timeout_ && nothing_to_read(*c)) return c;
    --open_;
  }
  return nullptr;
}

std::size_t upstream_pool::next_healthy() {
  const std::size_t n = cluster_.endpoints.size();
  for (std::size_t tries = 0; tries < n; ++tries) {
    std::size_t e = next_endpoint_++ % n;
    if (healthy(e)) return e;
  }
  return n;
}

std::optional<lease> upstream_pool::try_acquire(std::size_t& endpoint, bool fresh_only) {
  endpoint = next_healthy();
  if (endpoint == cluster_.endpoints.size()) return lease{nullptr, false, acquire_error::no_healthy};
  if (!fresh_only) {
    lease idle{take_idle(endpoint), true, acquire_error::none};
    if (idle.conn) return idle;
  }
  return std::nullopt;
}

task<lease> upstream_pool::acquire(clock::time_point deadline, bool fresh_only) {
  std::size_t endpoint = 0;
  if (auto now = try_acquire(endpoint, fresh_only)) co_return std::move(*now);
  co_return co_await acquire_new(endpoint, deadline);
}

task<lease> upstream_pool::acquire_new(std::size_t endpoint, clock::time_point deadline) {
  if (open_ >= cluster_.max_connections && idle_count_ > 0) {
    // At the cap with idle connections to other endpoints: close one to make room.
    for (auto& idle : idle_) {
      if (idle.empty()) continue;
      idle.erase(idle.begin());  // the oldest
      --idle_count_;
      --open_;
      break;
    }
  }
  if (open_ < cluster_.max_connections) co_return co_await connect(endpoint, deadline);
  if (waiters_.size() >= cluster_.max_pending) co_return lease{nullptr, false, acquire_error::overflow};

  waiter w(*this);
  waiters_.push_back(&w);
  w.timer.expires_at(deadline);
  co_await w.timer.async_wait(nothrow);
  if (!w.granted) co_return lease{nullptr, false, acquire_error::pending_timeout};  // ~waiter unlinks
  if (w.conn) {
    // Handed over at its release: peeked as a reuse from the idle list is.
    if (nothing_to_read(*w.conn)) co_return lease{std::move(w.conn), true, acquire_error::none};
    w.conn.reset();  // closed: its slot is ours, to open a new one
  }
  // Granted the slot of a closed connection: open_ was kept for us.
  --open_;
  endpoint = next_healthy();
  if (endpoint == cluster_.endpoints.size()) {
    release_slot();
    co_return lease{nullptr, false, acquire_error::no_healthy};
  }
  co_return co_await connect(endpoint, deadline);
}

task<lease> upstream_pool::connect(std::size_t first_endpoint, clock::time_point deadline) {
  ++open_;
  acquire_error last = acquire_error::connect_failed;
  // Try each healthy endpoint at most once, starting with the one picked for this request.
  for (std::size_t attempt = 0; attempt < cluster_.endpoints.size(); ++attempt) {
    std::size_t index = (first_endpoint + attempt) % cluster_.endpoints.size();
    if (!healthy(index)) continue;
    auto conn = std::make_unique<upstream_connection>(ex_);
    conn->endpoint = index;
    auto budget = std::min<clock::duration>(cluster_.connect_timeout, deadline - clock::now());
    if (budget <= clock::duration::zero()) {
      last = acquire_error::connect_timeout;
      break;
    }
    conn->stream.expires_after(budget);
    auto [ec] = co_await conn->stream.tcp().async_connect(cluster_.endpoints[index], nothrow);
    if (!ec) {
      conn->stream.socket().set_option(asio::ip::tcp::no_delay(true), ec);
      enable_read_hints(conn->stream.socket());  // (refused: the reads try at once, proxy/short_read.hpp)
      if (cluster_.tls) {
        // The handshake shares the connect budget. A failed verification is
        // not retried on another endpoint: they all present the same names.
        auto& tls = conn->stream.start_tls(cluster_.tls->context());
        cluster_.tls->prepare(tls.native_handle(), cluster_.tls_host);
        auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::client, nothrow);
        if (hec) {
          last = conn->stream.timed_out(hec) == beast::error::timeout ? acquire_error::connect_timeout
                                                                      : acquire_error::tls_failed;
          log::warn("cluster {}: TLS handshake with {} failed: {}", cluster_.name,
                    cluster_.endpoints[index].address().to_string(), hec.message());
          if (connect_errors_) connect_errors_->add();
          if (last == acquire_error::tls_failed) break;
          continue;
        }
      }
      conn->stream.expires_never();
      ++created_;
      co_return lease{std::move(conn), false, acquire_error::none};
    }
    last = conn->stream.timed_out(ec) == beast::error::timeout ? acquire_error::connect_timeout
                                                               : acquire_error::connect_failed;
    log::debug("cluster {}: connect to {} failed: {}", cluster_.name, cluster_.endpoints[index].address().to_string(),
               ec.message());
    if (connect_errors_) connect_errors_->add();
  }
  --open_;
  release_slot();
  co_return lease{nullptr, false, last};
}

void upstream_pool::release_slot() {
  // A slot is free again: let a waiter use it.
  if (!waiters_.empty()) {
    waiter* w = waiters_.front();
    waiters_.pop_front();
    w->granted = true;
    ++open_;  // held for the waiter, which decrements before connecting
    w->timer.cancel();
  }
}

void upstream_pool::release(upstream_ptr conn, bool reusable) {
  if (reusable && conn->buffer.size() != 0) reusable = false;  // stray bytes: never reuse
  // Under TLS, stray bytes may sit in OpenSSL's buffers (decrypted or not)
  // where the idle check's peek at the socket cannot see them.
  if (reusable && conn->stream.tls()) {
    SSL* ssl = conn->stream.tls()->native_handle();
    if (SSL_has_pending(ssl) || BIO_ctrl_pending(SSL_get_rbio(ssl)) > 0) reusable = false;
  }
  if (!waiters_.empty()) {
    waiter* w = waiters_.front();
    waiters_.pop_front();
    w->granted = true;
    if (reusable) {
      w->conn = std::move(conn);
    } else {
      conn.reset();  // closes; the waiter inherits the slot (open_ unchanged)
    }
    w->timer.cancel();
    return;
  }
  if (!reusable) {
    --open_;
    return;
  }
  conn->stream.expires_never();
  conn->idle_since = coarse_now();
  ++idle_count_;
  idle_[conn->endpoint].push_back(std::move(conn));
}

}  // namespace vane::proxy
