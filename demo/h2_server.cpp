#include "demo/h2_server.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/string.hpp>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "demo/endpoints.hpp"
#include "demo/grpc_service.hpp"
#include "demo/h2_response.hpp"
#include "demo/pattern.hpp"

namespace vane::demo {

namespace asio = boost::asio;
namespace beast = boost::beast;
using clock = std::chrono::steady_clock;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_header_bytes = std::size_t{64} * 1024;  // a larger request head resets its stream
constexpr std::size_t out_high_water = std::size_t{64} * 1024;    // response bytes queued before write() waits
constexpr std::size_t write_batch = std::size_t{64} * 1024;       // frames gathered into one socket write
constexpr std::size_t small_body_size = 4096;                     // an HTTP body's bytes kept (/_demo/config)
constexpr auto idle_timeout = std::chrono::minutes(5);            // as the HTTP/1.1 side
constexpr auto flush_timeout = std::chrono::seconds(5);           // for the last frames (a GOAWAY) at the end

// One coroutine's wake-up (one io_context thread): a notify() before the
// wait() is not lost.
class wakeup {
 public:
  explicit wakeup(const asio::any_io_executor& ex) : timer_(ex) {}
  // False when `until` passed first.
  asio::awaitable<bool> wait(clock::time_point until = clock::time_point::max()) {
    if (!pending_) {
      timer_.expires_at(until);
      co_await timer_.async_wait(nothrow);
    }
    const bool woken = pending_;
    pending_ = false;
    co_return woken || clock::now() < until;
  }
  void notify() {
    pending_ = true;
    timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  bool pending_ = false;
};

class connection;

// A request stream and its response.
class stream final : public h2_response {
 public:
  stream(connection& c, std::int32_t id, const asio::any_io_executor& ex) : conn(c), id(id), wake(ex) {}

  void head(unsigned status, const header_list& fields, bool end) override;
  asio::awaitable<bool> write(std::string_view data) override;
  asio::awaitable<bool> end(const header_list& trailers) override;
  void reset() override;
  bool gone() const override { return closed; }
  asio::awaitable<void> wait_gone() override {
    while (!closed) co_await wake.wait();
  }
  asio::awaitable<void> pause(std::chrono::milliseconds d) override {
    const auto until = clock::now() + d;
    while (!closed && co_await wake.wait(until)) {
    }
  }

  std::size_t queued() const { return out.size() - out_at; }

  connection& conn;
  std::int32_t id;
  // The request.
  std::string method, path, authority, content_type;
  std::vector<std::pair<std::string, std::string>> fields;  // the others, for /headers
  std::size_t header_bytes = 0;
  bool grpc = false;
  bool running = false;  // its handler was started (at the request's end) and has not returned
  bool closed = false;   // nghttp2 closed it: both sides ended, or it was reset, or the connection ended
  fnv1a sum;
  std::uint64_t received = 0;
  std::string body;  // gRPC: all of it (up to max_grpc_message); HTTP: the first 4 KiB
  bool too_large = false;
  // The response.
  bool submitted = false;
  bool no_body = false;
  bool done = false;  // END_STREAM went out
  std::string out;
  std::size_t out_at = 0;
  bool out_last = false;
  std::vector<std::pair<std::string, std::string>> trailers;
  wakeup wake;  // for its handler: bytes went out, the response ended, the stream closed
};

class connection {
 public:
  connection(beast::tcp_stream& sock, state& st);
  ~connection() { nghttp2_session_del(session_); }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  asio::awaitable<void> run(beast::flat_buffer& received);
  nghttp2_session* session() const { return session_; }
  void want_write() { writer_wake_.notify(); }

 private:
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t flags, void* self);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int on_data_chunk(nghttp2_session*, std::uint8_t flags, std::int32_t stream_id, const std::uint8_t* data,
                           std::size_t len, void* self);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code, void* self);

  stream* find(std::int32_t id) const {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }
  void start(stream& s);
  asio::awaitable<void> serve_stream(stream& s);
  asio::awaitable<void> serve_http(stream& s);
  asio::awaitable<void> write_loop();

  beast::tcp_stream& sock_;
  state& st_;
  nghttp2_session* session_ = nullptr;
  std::map<std::int32_t, std::unique_ptr<stream>> streams_;
  std::size_t running_ = 0;
  bool first_stream_ = true;
  std::uint32_t begun_ = 0;        // request streams opened (for --h2-goaway-after)
  std::int32_t goaway_last_ = -1;  // the last stream of our GOAWAY, once sent
  bool closing_ = false;
  bool writer_done_ = false;
  std::string wbuf_;
  wakeup writer_wake_;
  wakeup idle_wake_;  // a handler returned, or the writer ended
};

// ---- the response ----

std::vector<nghttp2_nv> to_nva(const header_list& fields) {
  std::vector<nghttp2_nv> nva;
  nva.reserve(fields.size());
  for (const auto& [n, v] : fields)
    nva.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                   reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                   NGHTTP2_NV_FLAG_NONE});  // (nghttp2 copies them)
  return nva;
}

// nghttp2's data provider: the queued body, as the client's window allows;
// at its end the trailers, if any.
ssize_t read_body(nghttp2_session* session, std::int32_t, std::uint8_t* buf, std::size_t length, std::uint32_t* flags,
                  nghttp2_data_source* source, void*) {
  stream& s = *static_cast<stream*>(source->ptr);
  const std::size_t n = std::min(length, s.queued());
  if (n) std::memcpy(buf, s.out.data() + s.out_at, n);
  s.out_at += n;
  if (s.out_at == s.out.size()) {
    s.out.clear();
    s.out_at = 0;
  }
  if (n) s.wake.notify();
  if (s.queued() == 0 && s.out_last) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!s.trailers.empty()) {
      header_list fields;
      for (const auto& [name, value] : s.trailers) fields.emplace_back(name, value);
      const auto nva = to_nva(fields);
      if (nghttp2_submit_trailer(session, s.id, nva.data(), nva.size()) == 0) *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return static_cast<ssize_t>(n);
  }
  if (n == 0) return NGHTTP2_ERR_DEFERRED;  // resumed by write() or end()
  return static_cast<ssize_t>(n);
}

void stream::head(unsigned status, const header_list& fields, bool end) {
  if (closed || submitted) return;
  char code[4] = {static_cast<char>('0' + status / 100 % 10), static_cast<char>('0' + status / 10 % 10),
                  static_cast<char>('0' + status % 10), '\0'};
  header_list all{{":status", std::string_view(code, 3)}, {"server", "vane-demo"}};
  all.insert(all.end(), fields.begin(), fields.end());
  const auto nva = to_nva(all);
  nghttp2_data_provider provider{};
  provider.source.ptr = this;
  provider.read_callback = read_body;
  submitted = true;
  no_body = end;
  if (nghttp2_submit_response(conn.session(), id, nva.data(), nva.size(), end ? nullptr : &provider) != 0)
    closed = true;  // (the stream is gone already)
  conn.want_write();
}

asio::awaitable<bool> stream::write(std::string_view data) {
  if (closed || !submitted || no_body || out_last) co_return false;
  out.append(data);
  nghttp2_session_resume_data(conn.session(), id);
  conn.want_write();
  while (!closed && queued() > out_high_water) co_await wake.wait();
  co_return !closed;
}

asio::awaitable<bool> stream::end(const header_list& fields) {
  if (!submitted) co_return false;
  if (!no_body && !out_last) {
    for (const auto& [n, v] : fields) trailers.emplace_back(n, v);
    out_last = true;
    nghttp2_session_resume_data(conn.session(), id);
    conn.want_write();
  }
  while (!closed && !done) co_await wake.wait();
  co_return done;
}

void stream::reset() {
  if (closed) return;
  nghttp2_submit_rst_stream(conn.session(), NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
  conn.want_write();
}

// ---- the connection ----

connection::connection(beast::tcp_stream& sock, state& st)
    : sock_(sock), st_(st), writer_wake_(sock.get_executor()), idle_wake_(sock.get_executor()) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_session_server_new(&session_, cbs, this);
  nghttp2_session_callbacks_del(cbs);
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, st.s.h2_max_streams}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
}

int connection::on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto& c = *static_cast<connection*>(self);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  const std::int32_t id = frame->hd.stream_id;
  if (c.goaway_last_ >= 0 && id > c.goaway_last_) {
    // Opened before the peer saw our GOAWAY: not processed, and said so (nghttp2 ignores those that
    // come after the GOAWAY went out by itself).
    nghttp2_submit_rst_stream(c.session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
    ++c.st_.h2_refused;
    return 0;  // (no stream of ours: its fields are not kept, and the RST_STREAM closes it)
  }
  c.streams_[id] = std::make_unique<stream>(c, id, c.sock_.get_executor());
  if (c.st_.s.h2_goaway_after > 0 && ++c.begun_ == c.st_.s.h2_goaway_after) {
    // --h2-goaway-after: this stream is the last one this connection processes.
    c.goaway_last_ = id;
    nghttp2_submit_goaway(c.session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR, nullptr, 0);
    ++c.st_.h2_goaways;
  }
  return 0;
}

int connection::on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                          const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* self) {
  auto& c = *static_cast<connection*>(self);
  stream* s = c.find(frame->hd.stream_id);
  if (!s || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // (request trailers: not needed)
  s->header_bytes += namelen + valuelen + 32;                      // RFC 7541 §4.1's entry size
  if (s->header_bytes > max_header_bytes) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // the stream is reset
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":method")
    s->method = std::move(v);
  else if (n == ":path")
    s->path = std::move(v);
  else if (n == ":authority")
    s->authority = std::move(v);
  else if (n.starts_with(':'))
    return 0;
  else {
    if (n == "content-type") s->content_type = v;
    s->fields.emplace_back(n, std::move(v));
  }
  return 0;
}

int connection::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto& c = *static_cast<connection*>(self);
  stream* s = c.find(frame->hd.stream_id);
  if (!s) return 0;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
    s->grpc = is_grpc(s->method, s->content_type);
  // The handler starts once the request has ended: every method here takes one request message.
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && !s->running)
    c.start(*s);
  return 0;
}

int connection::on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t stream_id, const std::uint8_t* data,
                              std::size_t len, void* self) {
  auto& c = *static_cast<connection*>(self);
  stream* s = c.find(stream_id);
  if (!s) return 0;
  const auto* bytes = reinterpret_cast<const char*>(data);
  s->received += len;
  if (s->grpc) {
    if (s->body.size() + len > max_grpc_message + 5) {
      s->too_large = true;
      std::string().swap(s->body);
    }
    if (!s->too_large) s->body.append(bytes, len);
  } else {
    s->sum.update(bytes, len);
    if (s->body.size() < small_body_size) s->body.append(bytes, std::min(len, small_body_size - s->body.size()));
  }
  return 0;
}

int connection::on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto& c = *static_cast<connection*>(self);
  stream* s = c.find(frame->hd.stream_id);
  if (!s) return 0;
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    s->done = true;
    s->wake.notify();
  }
  return 0;
}

int connection::on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t, void* self) {
  // Never a fatal error from here (nghttp2 before 1.55.1 leaks on one).
  auto& c = *static_cast<connection*>(self);
  stream* s = c.find(stream_id);
  if (!s) return 0;
  s->closed = true;
  s->wake.notify();
  if (!s->running) c.streams_.erase(stream_id);
  return 0;
}

// Started after the frame's processing (posted): no handler runs inside nghttp2's input.
void connection::start(stream& s) {
  s.running = true;
  ++running_;
  asio::post(sock_.get_executor(),
             [this, &s] { asio::co_spawn(sock_.get_executor(), serve_stream(s), asio::detached); });
}

asio::awaitable<void> connection::serve_stream(stream& s) {
  if (first_stream_) {
    first_stream_ = false;
    if (s.grpc || is_service(s.path.substr(0, s.path.find('?')))) ++st_.service_connections;
  }
  st_.bytes_received += s.received;
  if (s.closed) {
    // Reset by the client before its handler ran.
  } else if (s.grpc) {
    const grpc_request req{s.path, s.body, s.too_large};
    co_await serve_grpc(st_, req, s);
  } else {
    co_await serve_http(s);
  }
  if (!s.closed && !s.done) s.reset();  // a handler that gave up (cannot happen to a complete answer)
  s.running = false;
  --running_;
  idle_wake_.notify();
  if (s.closed) streams_.erase(s.id);
}

// The HTTP endpoints, as on HTTP/1.1 (demo/endpoints.hpp).
asio::awaitable<void> connection::serve_http(stream& s) {
  http_request r;
  r.method = s.method;
  r.target = s.path;
  r.path = r.target.substr(0, r.target.find('?'));
  r.host = s.authority;
  bool has_length = false;
  for (const auto& [name, value] : s.fields) {
    if (name == "host" && r.host.empty()) r.host = value;
    if (name == "content-length") has_length = true;
  }
  r.received = s.received;
  r.has_body = s.received > 0 || has_length;
  r.checksum = s.sum.state;
  r.small_body = s.body;
  if (r.path == "/headers") {
    if (!s.authority.empty()) r.headers["host"] = s.authority;
    for (const auto& [name, value] : s.fields) {
      auto it = r.headers.find(name);
      if (it != r.headers.end())
        it->value() = std::string(it->value().as_string()) + "," + value;
      else
        r.headers[name] = value;
    }
  }
  std::uint64_t n = 0;
  if (is_service(r.path)) {
    n = begin_service(st_, r);
    if (st_.s.latency.count() > 0) {
      const auto latency = st_.s.latency;
      co_await s.pause(latency);
      if (s.closed) co_return;
    }
  }
  const http_reply a = answer(st_, r, n);
  if (a.what == http_reply::kind::reset) {
    s.reset();
    co_return;
  }
  const std::string version = st_.s.version;
  const std::string length = std::to_string(a.what == http_reply::kind::bytes ? a.bytes : a.body.size());
  header_list fields{{"x-version", version}};
  if (!a.content_type.empty()) fields.emplace_back("content-type", a.content_type);
  if (!(a.what == http_reply::kind::bytes && a.chunked)) fields.emplace_back("content-length", length);
  const bool empty = s.method == "HEAD" || (a.what == http_reply::kind::answer && a.body.empty()) ||
                     (a.what == http_reply::kind::bytes && a.bytes == 0);
  s.head(a.status, fields, empty);
  if (!empty && a.what == http_reply::kind::bytes) {
    std::string chunk;
    for (std::uint64_t sent = 0; sent < a.bytes;) {
      const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(std::uint64_t{64} * 1024, a.bytes - sent));
      chunk.resize(len);
      for (std::size_t i = 0; i < len; ++i) chunk[i] = pattern_byte(sent + i);
      if (!co_await s.write(chunk)) co_return;
      sent += len;
    }
  } else if (!empty) {
    if (!co_await s.write(a.body)) co_return;
  }
  const header_list none;
  co_await s.end(none);
}

asio::awaitable<void> connection::write_loop() {
  for (;;) {
    wbuf_.clear();
    bool failed = false;
    while (wbuf_.size() < write_batch) {
      const std::uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) failed = true;
      if (n <= 0) break;
      wbuf_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    if (!wbuf_.empty()) {
      const auto out = asio::buffer(wbuf_);
      auto [ec, n] = co_await asio::async_write(sock_, out, nothrow);
      if (ec || failed) break;
      continue;
    }
    if (failed || closing_ || (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_))) break;
    co_await writer_wake_.wait();
  }
  writer_done_ = true;
  idle_wake_.notify();
  if (!closing_) {  // nghttp2 is done (a GOAWAY went) or the peer is gone: the reader stops too
    boost::system::error_code ignored;
    sock_.socket().cancel(ignored);
  }
}

asio::awaitable<void> connection::run(beast::flat_buffer& received) {
  asio::co_spawn(sock_.get_executor(), write_loop(), asio::detached);
  for (;;) {
    if (received.size() > 0) {
      const auto in = received.data();
      const ssize_t n = nghttp2_session_mem_recv(session_, static_cast<const std::uint8_t*>(in.data()), in.size());
      if (n < 0) break;  // a fatal error: nothing more to say
      received.consume(static_cast<std::size_t>(n));
      want_write();
    }
    // nghttp2 reads no more once it has said GOAWAY (a protocol error): what it
    // still has to say is written, then the connection closes.
    if (!nghttp2_session_want_read(session_) || writer_done_) break;
    if (running_ == 0)
      sock_.expires_after(idle_timeout);
    else
      sock_.expires_never();
    const auto space = received.prepare(std::size_t{16} * 1024);
    auto [ec, n] = co_await sock_.async_read_some(space, nothrow);
    if (ec) break;
    received.commit(n);
  }
  sock_.expires_never();
  if (!writer_done_ && nghttp2_session_want_write(session_)) {
    want_write();
    const auto until = clock::now() + flush_timeout;
    while (!writer_done_ && nghttp2_session_want_write(session_) && co_await idle_wake_.wait(until)) {
    }
  }
  closing_ = true;
  for (auto& [id, s] : streams_) {
    s->closed = true;
    s->wake.notify();
  }
  want_write();
  boost::system::error_code ignored;
  sock_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  while (running_ > 0 || !writer_done_) co_await idle_wake_.wait();
}

}  // namespace

asio::awaitable<protocol> sniff_protocol(beast::tcp_stream& stream, beast::flat_buffer& buffer) {
  for (;;) {
    const std::string_view got(static_cast<const char*>(buffer.data().data()), buffer.size());
    const std::size_t n = std::min(got.size(), h2_preface.size());
    if (got.substr(0, n) != h2_preface.substr(0, n)) co_return protocol::http1;
    if (n == h2_preface.size()) co_return protocol::h2;
    const auto space = buffer.prepare(4096);
    auto [ec, read] = co_await stream.async_read_some(space, nothrow);
    if (ec) co_return protocol::gone;
    buffer.commit(read);
  }
}

asio::awaitable<void> serve_h2(beast::tcp_stream& stream, beast::flat_buffer& received, state& st) {
  ++st.h2_connections;
  connection c(stream, st);
  co_await c.run(received);
}

}  // namespace vane::demo
