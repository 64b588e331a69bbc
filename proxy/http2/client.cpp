#include "proxy/http2/client.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/field.hpp>
#include <charconv>
#include <cstring>
#include <map>
#include <string>

#include "common/log.hpp"
#include "proxy/http2/frames.hpp"
#include "proxy/http2/wakeup.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using clock = std::chrono::steady_clock;

namespace {

constexpr std::uint32_t default_peer_streams = 100;             // until the peer's SETTINGS say
constexpr std::int32_t stream_window = 256 * 1024;              // response bytes in flight per stream
constexpr std::int32_t connection_window = 1024 * 1024;         // and per connection
constexpr std::size_t out_high_water = std::size_t{64} * 1024;  // request bytes queued before put() says pending
constexpr std::size_t write_batch = std::size_t{64} * 1024;

std::uint8_t* bytes_of(std::string_view s) { return reinterpret_cast<std::uint8_t*>(const_cast<char*>(s.data())); }

}  // namespace

// ---- a call ----

class h2_call {
 public:
  h2_call(std::shared_ptr<h2_client_session> s, const attempt_request& r);
  ~h2_call();
  h2_call(const h2_call&) = delete;
  h2_call& operator=(const h2_call&) = delete;

  class source final : public body_source {
   public:
    explicit source(h2_call& c) : c_(c) {}
    std::optional<relay_status> poll() override;
    task<relay_status> next() override;
    std::span<const std::string_view> pieces() const noexcept override { return {&piece_, piece_.empty() ? 0U : 1U}; }
    bool done() const noexcept override { return c_.ended && c_.in_pending.empty(); }
    void consume() override;
    std::span<const trailer_field> trailers() const noexcept override { return c_.trailer_views; }

   private:
    h2_call& c_;
    std::string_view piece_;
  };

  class sink final : public body_sink {
   public:
    explicit sink(h2_call& c) : c_(c) {}
    put_result put(std::span<const std::string_view> pieces, bool last) override;
    task<bool> flush() override;
    bool head_sent() const noexcept override { return true; }
    void trailers(std::span<const trailer_field> fields) override;

   private:
    h2_call& c_;
  };

  std::size_t queued() const { return out.size() - out_at; }
  void wake_all() {
    in_wake.notify();
    out_wake.notify();
  }
  void reset(std::uint32_t code);

  std::shared_ptr<h2_client_session> session;
  std::int32_t id = -1;
  // The request.
  std::string out;
  std::size_t out_at = 0;
  bool out_last = false;
  std::string out_trailer_store;
  std::vector<std::pair<std::size_t, std::size_t>> out_trailers;  // name, value lengths in the store
  wakeup out_wake;
  duration io_timeout;
  std::uint64_t* bytes;
  body_tee* tee;
  body_source* body = nullptr;
  bool pumping = false;  // the request body's relay runs
  std::optional<relay_status> pumped;
  clock::time_point pump_end;
  wakeup pump_wake;
  // The response.
  std::string head_store, trailer_store;
  struct field_at {
    std::uint32_t name, name_len, value, value_len;
  };
  std::vector<field_at> head_fields, trailer_fields;
  std::vector<trailer_field> trailer_views;
  std::size_t header_bytes = 0;
  std::uint32_t header_limit;
  unsigned status = 0;
  bool head_done = false;
  bool ended = false;            // END_STREAM received
  bool ended_with_head = false;  // on the head's own HEADERS frame (no body, no trailers: Trailers-Only)
  bool finished = false;         // h2_call_finish ran: what still arrives is given back at once
  bool closed = false;           // the stream is gone (both done, reset, or the connection ended)
  bool head_out = false;         // its HEADERS went out (before that, the upstream cannot have it)
  std::uint32_t error = 0;
  std::string in_pending, in_ready;
  wakeup in_wake;
  source src{*this};
  sink snk{*this};
};

// ---- a connection ----

class h2_client_session : public std::enable_shared_from_this<h2_client_session> {
 public:
  h2_client_session(h2_upstream& owner, std::size_t endpoint, const worker_executor& ex)
      : owner_(&owner),
        endpoint_(endpoint),
        ex_(ex),
        deadlines_(boost::asio::use_service<wake_deadlines>(ex.context())),
        writer_wake_(deadlines_) {}
  ~h2_client_session() {
    if (session_) nghttp2_session_del(session_);
  }
  h2_client_session(const h2_client_session&) = delete;
  h2_client_session& operator=(const h2_client_session&) = delete;
  wake_deadlines& deadlines() const { return deadlines_; }

  enum class state { connecting, open, closed };
  state now() const { return state_; }
  std::size_t endpoint() const { return endpoint_; }
  acquire_error connect_error() const { return connect_error_; }
  bool has_room() const {
    if (state_ == state::closed || goaway_) return false;
    std::uint32_t limit = default_peer_streams;
    if (session_) {
      limit = nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
      if (nghttp2_session_get_next_stream_id(session_) > (1U << 31) - 2) return false;  // ids run out: a new one
    }
    return reserved_ < limit;
  }
  void reserve() {
    if (reserved_++ == 0 && conn_) conn_->stream.expires_never();
  }
  // An idle connection closes after the pool's idle timeout, as an HTTP/1.1 one would.
  void unreserve() {
    if (--reserved_ == 0 && conn_ && owner_) conn_->stream.expires_after(owner_->pool().idle_timeout());
  }
  task<bool> wait_connected(clock::time_point until) {
    while (state_ == state::connecting) {
      const bool changed = co_await connected_.wait(ex_, until);
      if (!changed) co_return state_ == state::open;
    }
    co_return state_ == state::open;
  }
  nghttp2_session* session() const { return session_; }
  void want_write() { writer_wake_.notify(); }
  bool tls() const { return tls_; }
  // The owner is going: close, and release nothing to it.
  void detach() {
    owner_ = nullptr;
    close();
  }

  void start(clock::time_point deadline);
  enum class submitted { ok, refused, bad_head };
  // refused: nghttp2 took nothing (the stream can go elsewhere); bad_head: no request line to send.
  // The request's head: from the received one and how it goes upstream when
  // `request.message` is set, else from `request.head` (a mirror's copy).
  submitted submit(const std::shared_ptr<h2_call>& call, const attempt_request& request);

 private:
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t flags, void* self);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int on_data_chunk(nghttp2_session*, std::uint8_t flags, std::int32_t stream_id, const std::uint8_t* data,
                           std::size_t len, void* self);
  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code, void* self);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* self);

  // Each callback of nghttp2 names its stream; most of them in a row name the same one.
  h2_call* find(std::int32_t id) const {
    if (last_ && last_->id == id) return last_;
    auto it = calls_.find(id);
    if (it == calls_.end()) return nullptr;
    last_ = it->second.get();
    return last_;
  }
  static task<void> run(std::shared_ptr<h2_client_session> self, clock::time_point deadline);
  static task<void> write_loop(std::shared_ptr<h2_client_session> self);
  task<void> read_loop();
  void close();

  h2_upstream* owner_;
  std::size_t endpoint_;
  worker_executor ex_;
  state state_ = state::connecting;
  acquire_error connect_error_ = acquire_error::none;
  broadcast connected_;
  upstream_ptr conn_;
  bool tls_ = false;
  nghttp2_session* session_ = nullptr;
  // The streams open, each keeping its call alive until nghttp2 is done with it (its data provider).
  std::map<std::int32_t, std::shared_ptr<h2_call>> calls_;
  mutable h2_call* last_ = nullptr;  // the one find() gave last (one of calls_)
  std::size_t reserved_ = 0;
  bool goaway_ = false;
  std::int32_t goaway_last_ = 0;  // the last stream the upstream's GOAWAY said it processes
  bool writer_done_ = true;
  std::string wbuf_;
  std::string names_scratch_;  // submit's, reused
  h2_request_scratch fields_scratch_;
  std::vector<nghttp2_nv> nva_scratch_;
  wake_deadlines& deadlines_;  // the worker's, for the session's wakeups and its calls'
  wakeup writer_wake_;

  friend class h2_call;
};

h2_call::h2_call(std::shared_ptr<h2_client_session> s, const attempt_request& r)
    : session(std::move(s)),
      out_wake(session->deadlines()),
      io_timeout(r.io_timeout),
      bytes(r.bytes),
      tee(r.tee),
      pump_wake(session->deadlines()),
      header_limit(r.header_limit),
      in_wake(session->deadlines()) {
  // Room for a usual response head at once, instead of growing through several allocations.
  head_store.reserve(256);
  head_fields.reserve(16);
}

h2_call::~h2_call() { session->unreserve(); }

void h2_call::reset(std::uint32_t code) {
  if (closed || id < 0) return;
  nghttp2_submit_rst_stream(session->session(), NGHTTP2_FLAG_NONE, id, code);
  session->want_write();
}

// The response body: what DATA frames brought since the last batch; taking
// it opens the stream's and the connection's windows by as much.
std::optional<relay_status> h2_call::source::poll() {
  if (!c_.in_pending.empty()) {
    c_.in_ready.swap(c_.in_pending);
    piece_ = c_.in_ready;
    ready_ = true;
    return relay_status::ok;
  }
  if (c_.ended) {
    piece_ = {};
    ready_ = true;
    return relay_status::ok;
  }
  if (c_.closed) return relay_status::read_failed;  // reset, or the connection ended
  return std::nullopt;
}

task<relay_status> h2_call::source::next() {
  const auto until = clock::now() + c_.io_timeout;  // an upstream silent for idle_timeout loses the stream
  for (;;) {
    if (auto r = poll()) co_return *r;
    if (!co_await c_.in_wake.wait(until)) {
      c_.reset(NGHTTP2_CANCEL);
      co_return relay_status::read_failed;
    }
  }
}

void h2_call::source::consume() {
  const std::size_t n = c_.in_ready.size();
  c_.in_ready.clear();
  piece_ = {};
  ready_ = false;
  touched_ = true;
  // The stream's window (the connection's opened as the bytes came, on_data_chunk); a stream the
  // upstream already closed has none left to open.
  if (n && !c_.closed && c_.session->session() && c_.session->now() == h2_client_session::state::open) {
    nghttp2_session_consume_stream(c_.session->session(), c_.id, n);
    c_.session->want_write();
  }
}

// The request body, queued for the data provider (send_body).
body_sink::put_result h2_call::sink::put(std::span<const std::string_view> pieces, bool last) {
  if (c_.closed) return put_result::failed;
  for (auto piece : pieces) {
    c_.out.append(piece);
    if (c_.bytes) *c_.bytes += piece.size();
    if (c_.tee) c_.tee->add(piece);
  }
  if (last) c_.out_last = true;
  if (c_.id >= 0) nghttp2_session_resume_data(c_.session->session(), c_.id);
  c_.session->want_write();
  return c_.queued() > out_high_water ? put_result::pending : put_result::written;
}

task<bool> h2_call::sink::flush() {
  const auto until = clock::now() + c_.io_timeout;
  while (!c_.closed && c_.queued() > 0)
    if (!co_await c_.out_wake.wait(until)) co_return false;
  co_return !c_.closed;
}

void h2_call::sink::trailers(std::span<const trailer_field> fields) {
  for (const auto& f : fields) {
    c_.out_trailer_store.append(f.name).append(f.value);
    c_.out_trailers.emplace_back(f.name.size(), f.value.size());
  }
}

namespace {

ssize_t send_body(nghttp2_session* session, std::int32_t id, std::uint8_t* buf, std::size_t length,
                  std::uint32_t* flags, nghttp2_data_source* source, void*) {
  h2_call& c = *static_cast<h2_call*>(source->ptr);
  const std::size_t n = std::min(length, c.queued());
  if (n) std::memcpy(buf, c.out.data() + c.out_at, n);
  c.out_at += n;
  if (c.out_at == c.out.size()) {
    c.out.clear();
    c.out_at = 0;
  }
  if (n) c.out_wake.notify();
  if (c.queued() == 0 && c.out_last) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!c.out_trailers.empty()) {
      std::vector<nghttp2_nv> nva;
      std::size_t at = 0;
      for (auto [name, value] : c.out_trailers) {
        const std::string_view store(c.out_trailer_store);
        nva.push_back({bytes_of(store.substr(at, name)), bytes_of(store.substr(at + name, value)), name, value,
                       NGHTTP2_NV_FLAG_NONE});
        at += name + value;
      }
      if (nghttp2_submit_trailer(session, id, nva.data(), nva.size()) == 0) *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return static_cast<ssize_t>(n);
  }
  if (n == 0) return NGHTTP2_ERR_DEFERRED;  // resumed by put()
  return static_cast<ssize_t>(n);
}

}  // namespace

h2_client_session::submitted h2_client_session::submit(const std::shared_ptr<h2_call>& call,
                                                       const attempt_request& request) {
  h2_call& c = *call;
  const bool with_body = request.has_body;
  // The session's scratch, reused by every request (nghttp2 copies the fields: NGHTTP2_NV_FLAG_NONE).
  std::vector<nghttp2_nv>& nva = nva_scratch_;
  const bool head_ok = request.message && request.how
                           ? h2_request_fields(*request.message, *request.how, tls_, request.grpc, fields_scratch_, nva)
                           : h2_request_fields(request.head, tls_, request.grpc, names_scratch_, nva);
  if (!head_ok) return submitted::bad_head;
  nghttp2_data_provider provider{};
  provider.source.ptr = &c;
  provider.read_callback = send_body;
  const std::int32_t id =
      nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), with_body ? &provider : nullptr, &c);
  if (id < 0) return submitted::refused;
  c.id = id;
  calls_[id] = call;
  want_write();
  return submitted::ok;
}

int h2_client_session::on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                                 std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                                 void* self) {
  auto& s = *static_cast<h2_client_session*>(self);
  h2_call* c = s.find(frame->hd.stream_id);
  if (!c || frame->hd.type != NGHTTP2_HEADERS) return 0;
  c->header_bytes += namelen + valuelen + 32;                                           // RFC 7541 §4.1's entry size
  if (c->header_bytes > c->header_limit) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // the stream is reset
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (!c->head_done) {
    if (n == ":status") {
      unsigned code = 0;
      std::from_chars(v.data(), v.data() + v.size(), code);
      c->status = code;
      return 0;
    }
    if (n.starts_with(':')) return 0;
    c->head_fields.push_back({static_cast<std::uint32_t>(c->head_store.size()), static_cast<std::uint32_t>(n.size()),
                              static_cast<std::uint32_t>(c->head_store.size() + n.size()),
                              static_cast<std::uint32_t>(v.size())});
    c->head_store.append(n).append(v);
  } else {
    if (n.starts_with(':')) return 0;
    c->trailer_fields.push_back(
        {static_cast<std::uint32_t>(c->trailer_store.size()), static_cast<std::uint32_t>(n.size()),
         static_cast<std::uint32_t>(c->trailer_store.size() + n.size()), static_cast<std::uint32_t>(v.size())});
    c->trailer_store.append(n).append(v);
  }
  return 0;
}

int h2_client_session::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto& s = *static_cast<h2_client_session*>(self);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    // No new stream here; those above its last stream are closed by nghttp2 (REFUSED_STREAM).
    s.goaway_ = true;
    s.goaway_last_ = frame->goaway.last_stream_id;
    if (s.owner_) s.owner_->forget(&s);
    return 0;
  }
  h2_call* c = s.find(frame->hd.stream_id);
  if (!c) return 0;
  const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_HEADERS && !c->head_done) {
    if (c->status >= 100 && c->status < 200 && !end) {  // an interim response: dropped
      c->head_fields.clear();
      c->head_store.clear();
      c->status = 0;
      return 0;
    }
    c->head_done = true;
    c->ended_with_head = end;
  }
  if (end && (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA)) {
    c->ended = true;
    const std::string_view store(c->trailer_store);
    for (const auto& f : c->trailer_fields)
      c->trailer_views.push_back({store.substr(f.name, f.name_len), store.substr(f.value, f.value_len)});
  }
  c->in_wake.notify();
  return 0;
}

int h2_client_session::on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t stream_id, const std::uint8_t* data,
                                     std::size_t len, void* self) {
  auto& s = *static_cast<h2_client_session*>(self);
  h2_call* c = s.find(stream_id);
  if (!c || c->finished) {
    // A call gone or ended (its RST not sent yet): its bytes must not hold the connection's window.
    nghttp2_session_consume_connection(s.session_, len);
    return 0;
  }
  c->in_pending.append(reinterpret_cast<const char*>(data), len);
  // The connection's window opens as bytes arrive, the stream's as they are relayed
  // (source::consume): a client that reads slowly holds its own stream back, at most a stream
  // window buffered here, and not the other calls on the connection (four slow ones held all of it).
  nghttp2_session_consume_connection(s.session_, len);
  c->in_wake.notify();
  return 0;
}

int h2_client_session::on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto& s = *static_cast<h2_client_session*>(self);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  if (h2_call* c = s.find(frame->hd.stream_id)) c->head_out = true;
  return 0;
}

int h2_client_session::on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code, void* self) {
  // Never a fatal error from here (nghttp2 before 1.55.1 leaks on one).
  auto& s = *static_cast<h2_client_session*>(self);
  h2_call* c = s.find(stream_id);
  if (!c) return 0;
  c->closed = true;
  c->error = error_code;
  c->wake_all();
  s.last_ = nullptr;
  s.calls_.erase(stream_id);  // (the call may go here)
  return 0;
}

void h2_client_session::start(clock::time_point deadline) {
  // Posted: the connection's coroutine starts after the caller's has suspended.
  asio::post(ex_, [self = shared_from_this(), deadline] {
    const worker_executor ex = self->ex_;
    asio::co_spawn(ex, run(self, deadline), asio::detached);
  });
}

task<void> h2_client_session::run(std::shared_ptr<h2_client_session> self, clock::time_point deadline) {
  h2_client_session& s = *self;
  if (!s.owner_) co_return;
  upstream_pool& pool = s.owner_->pool();
  lease l = co_await pool.acquire_new(s.endpoint_, deadline);
  if (l.error != acquire_error::none || !s.owner_ || s.state_ == state::closed) {
    if (l.conn && s.owner_) pool.release(std::move(l.conn), false);
    s.connect_error_ = l.error == acquire_error::none ? acquire_error::connect_failed : l.error;
    s.state_ = state::closed;
    if (s.owner_) s.owner_->forget(&s);
    s.connected_.notify_all();
    co_return;
  }
  s.conn_ = std::move(l.conn);
  s.endpoint_ = s.conn_->endpoint;
  s.tls_ = s.conn_->stream.tls() != nullptr;
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);  // windows open as responses are relayed (source::consume)
  nghttp2_option_set_peer_max_concurrent_streams(opt, default_peer_streams);
  nghttp2_option_set_no_closed_streams(opt, 1);  // as the downstream side (session.cpp)
  nghttp2_session_client_new2(&s.session_, cbs, &s, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                             {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, stream_window}};
  nghttp2_submit_settings(s.session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(s.session_, NGHTTP2_FLAG_NONE, 0, connection_window);
  s.state_ = state::open;
  if (s.reserved_ == 0) s.conn_->stream.expires_after(pool.idle_timeout());
  s.writer_done_ = false;
  asio::co_spawn(s.ex_, write_loop(self), asio::detached);
  s.connected_.notify_all();
  co_await s.read_loop();
  s.close();
  while (!s.writer_done_) co_await s.writer_wake_.wait();
  s.conn_->stream.expires_never();
  if (s.owner_) s.owner_->pool().release(std::move(s.conn_), false);
}

task<void> h2_client_session::read_loop() {
  boost::beast::flat_buffer& in = conn_->buffer;
  for (;;) {
    if (in.size() > 0) {
      const auto data = in.data();
      const ssize_t n = nghttp2_session_mem_recv(session_, static_cast<const std::uint8_t*>(data.data()), data.size());
      if (n < 0) {
        log::warn("h2 upstream {}: {}", conn_->endpoint, nghttp2_strerror(static_cast<int>(n)));
        co_return;
      }
      in.consume(static_cast<std::size_t>(n));
      want_write();
    }
    if (state_ == state::closed || !nghttp2_session_want_read(session_)) co_return;
    if (goaway_ && calls_.empty() && reserved_ == 0) co_return;
    auto [ec, n] = co_await conn_->stream.async_read_some(in.prepare(std::size_t{16} * 1024), task_nothrow);
    if (ec) co_return;
    in.commit(n);
  }
}

task<void> h2_client_session::write_loop(std::shared_ptr<h2_client_session> self) {
  h2_client_session& s = *self;
  for (;;) {
    s.wbuf_.clear();
    while (s.state_ != state::closed && s.wbuf_.size() < write_batch) {
      const std::uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(s.session_, &data);
      if (n <= 0) break;
      s.wbuf_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    if (!s.wbuf_.empty()) {
      auto [ec, n] = co_await asio::async_write(s.conn_->stream, asio::buffer(s.wbuf_), task_nothrow);
      if (ec) break;
      continue;
    }
    if (s.state_ == state::closed) break;
    co_await s.writer_wake_.wait();
  }
  s.writer_done_ = true;
  s.close();
  s.writer_wake_.notify();
}

void h2_client_session::close() {
  if (state_ == state::closed && calls_.empty()) return;
  const bool was_open = state_ == state::open;
  state_ = state::closed;
  if (owner_) owner_->forget(this);
  auto calls = std::move(calls_);
  calls_.clear();
  last_ = nullptr;
  for (auto& [id, c] : calls) {
    c->closed = true;
    // The connection ended under it (the upstream closed it after a GOAWAY, say): one it cannot
    // have processed is refused, so sent again (RFC 9113 §6.8, §8.7); any other is a reset.
    if (!c->head_out || (goaway_ && id > goaway_last_)) c->error = NGHTTP2_REFUSED_STREAM;
    c->wake_all();
  }
  if (was_open && conn_) {
    boost::system::error_code ignored;
    conn_->stream.tcp().cancel(ignored);
    conn_->stream.tcp().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  }
  writer_wake_.notify();
}

// ---- the cluster's connections ----

h2_upstream::h2_upstream(upstream_pool& pool) : pool_(pool) {}

// (Only a bad_alloc queueing a woken coroutine could leave it: terminating then is what the process
// would come to anyway.)
h2_upstream::~h2_upstream() {  // NOLINT(bugprone-exception-escape)
  // Every connection still running, taking new streams or not (one that had a GOAWAY is no longer in
  // sessions_ but may still read): none may reach this pool once it is gone.
  sessions_.clear();
  for (auto& w : made_)
    if (auto s = w.lock()) s->detach();
}

std::shared_ptr<h2_client_session> h2_upstream::reserve(std::size_t endpoint, bool fresh, clock::time_point deadline) {
  if (!fresh) {
    for (auto& s : sessions_) {
      if (s->endpoint() == endpoint && s->has_room()) {
        s->reserve();
        return s;
      }
    }
  }
  auto s = std::make_shared<h2_client_session>(*this, endpoint, pool_.executor());
  s->reserve();
  sessions_.push_back(s);
  std::erase_if(made_, [](const auto& w) { return w.expired(); });
  made_.push_back(s);
  s->start(deadline);
  return s;
}

void h2_upstream::forget(const h2_client_session* s) {
  std::erase_if(sessions_, [s](const auto& p) { return p.get() == s; });
}

// ---- an attempt ----

namespace {

task<void> pump(h2_call& c) {
  body_source& body = *c.body;
  const relay_status r = co_await relay(body, c.snk);
  c.pumped = r;
  c.pump_end = clock::now();
  c.pumping = false;
  if (r != relay_status::ok) c.reset(NGHTTP2_CANCEL);
  c.pump_wake.notify();
  c.in_wake.notify();
}

// The same, detached: the call stays alive until it ends.
task<void> pump_held(std::shared_ptr<h2_call> c) {
  h2_call& call = *c;
  co_await pump(call);
}

}  // namespace

task<attempt_result> attempt_h2(upstream_pool& pool, const attempt_request& request, std::shared_ptr<h2_call>& call,
                                message_head& head) {
  attempt_result result;
  const std::size_t endpoint = pool.pick_endpoint();
  if (endpoint == pool.cluster().endpoints.size()) {
    result.acquire = acquire_error::no_healthy;
    co_return result;
  }
  std::shared_ptr<h2_client_session> session = pool.h2().reserve(endpoint, request.fresh_only, request.deadline);
  h2_client_session& sess = *session;
  const clock::time_point deadline = request.deadline;
  bool connected = sess.now() == h2_client_session::state::open;  // (most are: no coroutine for those)
  if (!connected) connected = co_await sess.wait_connected(deadline);
  if (!connected) {
    session->unreserve();
    result.acquire = session->now() == h2_client_session::state::connecting ? acquire_error::pending_timeout
                                                                            : session->connect_error();
    if (result.acquire == acquire_error::none) result.acquire = acquire_error::connect_failed;
    co_return result;
  }
  result.endpoint = session->endpoint();
  call = std::make_shared<h2_call>(session, request);  // (it holds the reservation now)
  h2_call& c = *call;
  body_source& body = *request.body;
  const bool with_body = request.has_body;
  const auto submitted = session->submit(call, request);
  if (submitted != h2_client_session::submitted::ok) {
    result.end = attempt_end::write_failed;
    // Nothing was sent: another stream may take it, unless the head itself cannot be sent.
    result.stale = result.refused = submitted == h2_client_session::submitted::refused;
    co_return result;
  }
  if (!with_body) {
    c.pump_end = clock::now();
  } else {
    c.body = &body;
    c.pumping = true;
    if (body.can_cancel()) {
      asio::co_spawn(pool.executor(), pump_held(call), asio::detached);  // beside the response: streams flow both ways
    } else {
      co_await pump(c);
    }
  }
  // The head, within the try's timeout from the end of the request (none while it is still sent).
  while (!c.head_done && !c.closed) {
    if (c.pumped && *c.pumped != relay_status::ok) break;
    const auto until = c.pumping ? clock::time_point::max() : c.pump_end + request.try_timeout;
    const bool woken = co_await c.in_wake.wait(until);
    if (!woken) break;
  }
  if (c.head_done) {
    head.clear();
    head.version = 20;
    head.status = c.status;
    const std::string_view store(c.head_store);
    for (const auto& f : c.head_fields) {
      const std::string_view name = store.substr(f.name, f.name_len);
      head.fields.push_back({http::string_to_field(name), name, store.substr(f.value, f.value_len)});
    }
    result.end = attempt_end::response;
    co_return result;
  }
  // No head: what went wrong, once nothing of the call runs.
  const std::optional<relay_status> pumped = c.pumped;
  const bool closed = c.closed;
  const std::uint32_t error = c.error;
  co_await h2_call_finish(c);
  call.reset();
  if (pumped && *pumped != relay_status::ok && *pumped != relay_status::write_failed) {
    result.end = attempt_end::client_failed;
    result.body = *pumped;
  } else if (!closed) {
    result.end = attempt_end::timeout;
  } else {
    result.end = attempt_end::read_failed;
    // Refused (RST_STREAM REFUSED_STREAM, or above a GOAWAY's last stream): the upstream did nothing with it.
    result.stale = result.refused = error == NGHTTP2_REFUSED_STREAM;
  }
  co_return result;
}

body_source& h2_call_body(h2_call& call) { return call.src; }

bool h2_call_ended(const h2_call& call) { return call.ended_with_head; }

bool h2_call_pumping(const h2_call& call) { return call.pumping; }

namespace {

void begin_finish(h2_call& call) {
  call.finished = true;
  if (!call.closed && !(call.ended && !call.pumping && call.queued() == 0)) call.reset(NGHTTP2_CANCEL);
}

void end_finish(h2_call& call) {
  // (Response bytes never relayed gave the connection's window back when they came.)
  call.in_pending.clear();
  call.in_ready.clear();
}

}  // namespace

task<void> h2_call_finish(h2_call& call) {
  begin_finish(call);
  if (call.pumping) {
    call.body->cancel();
    while (call.pumping) co_await call.pump_wake.wait();
  }
  end_finish(call);
}

bool h2_call_finish_now(h2_call& call) {
  if (call.pumping) return false;
  begin_finish(call);
  end_finish(call);
  return true;
}

}  // namespace vane::proxy
