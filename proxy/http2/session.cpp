#include "proxy/http2/session.hpp"

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
#include <memory>

#include "common/grpc.hpp"
#include "common/log.hpp"
#include "proxy/http1/head_out.hpp"
#include "proxy/http2/frames.hpp"
#include "proxy/http2/wakeup.hpp"
#include "proxy/request_stream.hpp"
#include "proxy/worker.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t out_high_water =
    std::size_t{64} * 1024;  // response bytes queued per stream before put() says pending
constexpr std::size_t write_batch = std::size_t{64} * 1024;  // frames gathered into one socket write

class h2_connection;
struct h2_stream;

// The request body as DATA frames bring it: the batch ready is what arrived
// since the last one; consuming it opens the stream's and the connection's
// windows by as much (no automatic WINDOW_UPDATE), so a client can never
// send more than a window ahead of what the upstream took.
class h2_source final : public body_source {
 public:
  explicit h2_source(h2_stream& s) : s_(s) {}
  std::optional<relay_status> poll() override;
  task<relay_status> next() override;
  std::span<const std::string_view> pieces() const noexcept override { return {&piece_, piece_.empty() ? 0U : 1U}; }
  bool done() const noexcept override;
  void consume() override;
  std::span<const trailer_field> trailers() const noexcept override;
  bool cancel() override;
  bool can_cancel() const noexcept override { return true; }

 private:
  h2_stream& s_;
  std::string_view piece_;
};

// The response body, queued for nghttp2's data provider (read_body), which
// DATA frames take as the client's window allows.
class h2_sink final : public body_sink {
 public:
  explicit h2_sink(h2_stream& s) : s_(s) {}
  put_result put(std::span<const std::string_view> pieces, bool last) override;
  task<bool> flush() override;
  bool head_sent() const noexcept override;
  void trailers(std::span<const trailer_field> fields) override;

 private:
  h2_stream& s_;
};

class h2_downstream final : public downstream {
 public:
  explicit h2_downstream(h2_stream& s) : s_(s) {}
  body_source& request_body() override;
  task<bool> send_continue() override { co_return true; }  // an HTTP/2 client sends its body as it likes
  task<bool> reply(unsigned status, std::string_view body, bool close) override;
  void close_after() override {}  // a stream ends alone; the connection goes on
  body_sink& respond(const message_head& head, const response_shape& shape) override;
  bool end_response(relay_status status) override;

  request_meter* meter = nullptr;

 private:
  h2_stream& s_;
};

struct field_at {
  std::uint32_t name = 0, name_len = 0, value = 0, value_len = 0;
};

struct h2_stream {
  h2_stream(h2_connection& c, std::int32_t stream_id, wake_deadlines& deadlines, listener_stats* stats)
      : stats_(stats),
        conn(c),
        id(stream_id),
        in_wake(deadlines),
        out_wake(deadlines),
        source(*this),
        sink(*this),
        ds(*this) {
    if (stats_) stats_->streams_active.add(1);
    // Room for a usual request head at once, instead of growing through several allocations.
    store.reserve(256);
    fields.reserve(16);
  }
  ~h2_stream() {
    if (stats_) stats_->streams_active.add(-1);
  }
  h2_stream(const h2_stream&) = delete;
  h2_stream& operator=(const h2_stream&) = delete;
  clock::time_point opened = clock::now();
  listener_stats* stats_;
  h2_connection& conn;
  std::int32_t id;
  // The request head as decoded: names and values in `store`.
  std::string store;
  std::vector<field_at> fields;
  std::optional<field_at> method, path, authority, scheme;
  std::size_t header_bytes = 0;
  bool head_done = false;  // the request's HEADERS were received: a later block is its trailers
  std::string trailer_store;
  std::vector<field_at> trailer_fields;
  std::vector<trailer_field> trailer_views;  // of the request, once it ended
  bool cancelled = false;                    // the stream no longer relays the request body
  // The response's trailers (names lower-case), sent after its body.
  std::string out_trailer_store;
  std::vector<std::pair<std::size_t, std::size_t>> out_trailers;
  // State.
  bool running = false;        // its run_stream is going on
  bool request_ended = false;  // END_STREAM received
  bool bodiless = false;       // END_STREAM came with the request's HEADERS
  bool closed = false;         // nghttp2 closed it (both ends done, or reset)
  bool too_large = false;      // its body passed limits.max_body
  bool submitted = false;      // a response (head) was submitted
  bool head_sent = false;      // and its HEADERS frame went out
  bool response_done = false;  // END_STREAM sent
  // The request body.
  std::string in_pending, in_ready;
  std::uint64_t in_total = 0;
  wakeup in_wake;
  // The response body.
  std::string out;
  std::size_t out_at = 0;
  bool out_last = false;
  wakeup out_wake;
  h2_source source;
  h2_sink sink;
  h2_downstream ds;

  // The request is gRPC (its content-type).
  bool grpc() const {
    for (const auto& f : fields)
      if (view(f, true) == "content-type") return is_grpc_content_type(view(f, false));
    return false;
  }
  std::string_view view(const field_at& f, bool name) const {
    return name ? std::string_view(store).substr(f.name, f.name_len)
                : std::string_view(store).substr(f.value, f.value_len);
  }
  std::size_t queued() const { return out.size() - out_at; }
  // Closed by nghttp2 or by the connection's end: whoever waits on it wakes.
  void close() {
    closed = true;
    in_wake.notify();
    out_wake.notify();
  }
  void reset(std::uint32_t error_code);  // RST_STREAM (sent with the connection's next write)
};

class h2_connection {
 public:
  h2_connection(worker& w, proxy_stream& client, const std::string& listener, std::string_view client_ip, bool tls,
                worker::connection_entry& entry, listener_stats* stats);
  ~h2_connection() { nghttp2_session_del(session_); }
  h2_connection(const h2_connection&) = delete;
  h2_connection& operator=(const h2_connection&) = delete;

  task<void> run(boost::beast::flat_buffer& received);

  nghttp2_session* session() const { return session_; }
  void want_write() { writer_wake_.notify(); }
  // The limits of the worker's current table (a reload applies to the connection's next streams).
  const limits_config& limits() const { return w_.policy()->table->limits; }
  std::uint64_t max_body() const { return limits().max_body; }
  duration io_timeout() const { return limits().idle_timeout; }
  // Reused by every response head this connection submits (nghttp2 copies them at submit).
  std::string& names_scratch() { return names_scratch_; }
  std::vector<nghttp2_nv>& nva_scratch() { return nva_scratch_; }
  std::vector<std::pair<std::string_view, std::string_view>>& fields_scratch() { return fields_scratch_; }

 private:
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t flags, void* self);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int on_data_chunk(nghttp2_session*, std::uint8_t flags, std::int32_t stream_id, const std::uint8_t* data,
                           std::size_t len, void* self);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code, void* self);

  // Each callback of nghttp2 names its stream; most of them in a row name the same one.
  h2_stream* find(std::int32_t id) const {
    if (last_ && last_->id == id) return last_;
    auto it = streams_.find(id);
    if (it == streams_.end()) return nullptr;
    last_ = it->second.get();
    return last_;
  }
  void forget(std::int32_t id);
  // Runs the streams whose request heads the last input completed (their serve_stream, each until it waits).
  void start_streams() {
    for (std::size_t i = 0; i < to_start_.size(); ++i)
      asio::co_spawn(client_.get_executor(), serve_stream(*to_start_[i]), asio::detached);
    to_start_.clear();
  }
  task<void> write_loop();
  task<void> serve_stream(h2_stream& s);
  void build_head(h2_stream& s, message_head& head) const;

  // A drain: GOAWAY with the last stream taken (graceful: those go on), and
  // the connection ends once none runs.
  void go_away();
  // Ends the connection for a client's abuse: GOAWAY ENHANCE_YOUR_CALM (or the error given), counted once.
  void abuse(h2_error_reason why, std::uint32_t code = NGHTTP2_ENHANCE_YOUR_CALM);
  void count_error(h2_error_reason why) {
    if (error_counted_ || !stats_) return;
    error_counted_ = true;
    stats_->h2_errors[static_cast<std::size_t>(why)].add();
  }

 public:
  // A header list past limits.h2.max_header_list: the stream is reset (RFC 9113 §10.5.1), counted.
  int header_list_too_large() {
    if (stats_) stats_->h2_errors[static_cast<std::size_t>(h2_error_reason::header_list)].add();
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }

 private:
  worker& w_;
  listener_stats* stats_;
  worker::connection_entry& entry_;
  // Abuse checks (counted in vane_http2_protocol_errors_total).
  h2_abuse_meter abuse_meter_;
  bool error_counted_ = false;
  bool goaway_ = false;
  std::int32_t goaway_last_ = 0;      // the last stream the GOAWAY promised to process
  clock::time_point last_written_{};  // the writer's last write: the client reads
  proxy_stream& client_;
  std::string listener_;
  std::string client_ip_;
  bool tls_;
  nghttp2_session* session_ = nullptr;
  std::map<std::int32_t, std::unique_ptr<h2_stream>> streams_;
  mutable h2_stream* last_ = nullptr;  // the one find() gave last (one of streams_)
  std::vector<h2_stream*> to_start_;   // head complete, serve_stream not started yet
  std::size_t running_ = 0;
  bool closing_ = false;
  bool writer_done_ = false;
  std::string wbuf_;
  std::string names_scratch_;
  std::vector<nghttp2_nv> nva_scratch_;
  std::vector<std::pair<std::string_view, std::string_view>> fields_scratch_;
  wake_deadlines& deadlines_;  // the worker's, for every wakeup of the connection and its streams
  wakeup writer_wake_;
  wakeup idle_wake_;  // a stream's run ended, or the writer did
};

void h2_stream::reset(std::uint32_t error_code) {
  nghttp2_submit_rst_stream(conn.session(), NGHTTP2_FLAG_NONE, id, error_code);
  conn.want_write();
}

// ---- the request body ----

std::optional<relay_status> h2_source::poll() {
  if (s_.too_large) return relay_status::too_large;
  if (s_.cancelled) return relay_status::read_failed;
  if (!s_.in_pending.empty()) {
    s_.in_ready.swap(s_.in_pending);  // (in_ready was empty: the last batch was consumed)
    piece_ = s_.in_ready;
    ready_ = true;
    return relay_status::ok;
  }
  if (s_.request_ended) {
    piece_ = {};
    ready_ = true;  // the end
    return relay_status::ok;
  }
  if (s_.closed) return relay_status::read_failed;  // reset by the client, or the connection ended
  return std::nullopt;
}

task<relay_status> h2_source::next() {
  // A client that stops sending its body for idle_timeout loses its stream (as a stalled reader does).
  const auto until = clock::now() + s_.conn.io_timeout();
  for (;;) {
    if (auto r = poll()) co_return *r;
    if (!co_await s_.in_wake.wait(until)) {
      if (!s_.closed) s_.reset(NGHTTP2_CANCEL);
      co_return relay_status::read_failed;
    }
  }
}

bool h2_source::done() const noexcept { return s_.request_ended && s_.in_pending.empty(); }

std::span<const trailer_field> h2_source::trailers() const noexcept { return s_.trailer_views; }

bool h2_source::cancel() {
  s_.cancelled = true;
  touched_ = true;  // part of it may have gone: it cannot be sent again
  s_.in_wake.notify();
  return true;
}

void h2_source::consume() {
  const std::size_t n = s_.in_ready.size();
  s_.in_ready.clear();
  piece_ = {};
  ready_ = false;
  touched_ = true;
  if (n) {
    // WINDOW_UPDATE for what the upstream took. On a stream the client reset meanwhile this still
    // gives the connection's window back (nghttp2 skips the stream that is gone): the bytes were
    // taken from it, and a connection whose uploads are often cancelled would run out of window.
    nghttp2_session_consume(s_.conn.session(), s_.id, n);
    s_.conn.want_write();
  }
}

// ---- the response ----

ssize_t read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length, std::uint32_t* flags,
                  nghttp2_data_source* source, void*) {
  h2_stream& s = *static_cast<h2_stream*>(source->ptr);
  const std::size_t n = std::min(length, s.queued());
  if (n) std::memcpy(buf, s.out.data() + s.out_at, n);
  s.out_at += n;
  if (s.out_at == s.out.size()) {
    s.out.clear();
    s.out_at = 0;
  }
  if (n) s.out_wake.notify();
  if (s.queued() == 0 && s.out_last) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!s.out_trailers.empty()) {  // the trailers end the stream (gRPC's status)
      std::vector<nghttp2_nv> nva;
      std::size_t at = 0;
      const std::string_view store(s.out_trailer_store);
      for (auto [name, value] : s.out_trailers) {
        nva.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(store.data() + at)),
                       reinterpret_cast<std::uint8_t*>(const_cast<char*>(store.data() + at + name)), name, value,
                       NGHTTP2_NV_FLAG_NONE});
        at += name + value;
      }
      if (nghttp2_submit_trailer(s.conn.session(), s.id, nva.data(), nva.size()) == 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return static_cast<ssize_t>(n);
  }
  if (n == 0) return NGHTTP2_ERR_DEFERRED;  // resumed by put()
  return static_cast<ssize_t>(n);
}

// Submits the head (lower-case names, as HTTP/2 requires) with a body provider unless `no_body`.
void submit_head(h2_stream& s, unsigned status,
                 const std::vector<std::pair<std::string_view, std::string_view>>& fields, bool no_body) {
  // Names in lower case (copies in the connection's scratch where they were not); nghttp2 copies what submit
  // gets (NGHTTP2_NV_FLAG_NONE).
  std::string& names = s.conn.names_scratch();
  std::size_t total = 0;
  for (const auto& [n, v] : fields) total += n.size();
  names.clear();
  names.reserve(total);  // (no reallocation below: the pairs point into it)
  std::vector<nghttp2_nv>& nva = s.conn.nva_scratch();
  nva.clear();
  nva.reserve(fields.size() + 1);
  char code[4];
  auto [end, ec] = std::to_chars(code, code + sizeof code, status);
  nva.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(":status")), reinterpret_cast<std::uint8_t*>(code),
                 7, static_cast<std::size_t>(end - code), NGHTTP2_NV_FLAG_NONE});
  for (const auto& [n, v] : fields) {
    const std::string_view name = lower_name(names, n);
    nva.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                   reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), name.size(), v.size(),
                   NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_data_provider provider{};
  provider.source.ptr = &s;
  provider.read_callback = read_body;
  if (nghttp2_submit_response(s.conn.session(), s.id, nva.data(), nva.size(), no_body ? nullptr : &provider) != 0)
    s.closed = true;  // (the stream is gone already: the client reset it)
  else
    s.submitted = true;
  s.conn.want_write();
}

h2_sink::put_result h2_sink::put(std::span<const std::string_view> pieces, bool last) {
  if (s_.closed) return put_result::failed;
  std::size_t size = 0;
  for (auto piece : pieces) {
    s_.out.append(piece);
    size += piece.size();
  }
  if (s_.ds.meter) s_.ds.meter->bytes_sent += size;  // (the access log's, as an HTTP/1.1 sink counts them)
  if (last) s_.out_last = true;
  nghttp2_session_resume_data(s_.conn.session(), s_.id);
  s_.conn.want_write();
  return s_.queued() > out_high_water ? put_result::pending : put_result::written;
}

task<bool> h2_sink::flush() {
  // Until the queue is down to nothing: the client's window decides; one that stops reading for
  // idle_timeout loses its stream.
  const auto until = clock::now() + s_.conn.io_timeout();
  while (!s_.closed && s_.queued() > 0)
    if (!co_await s_.out_wake.wait(until)) co_return false;
  co_return !s_.closed;
}

void h2_sink::trailers(std::span<const trailer_field> fields) {
  for (const auto& f : fields) {
    if (f.name.starts_with(':')) continue;
    for (char c : f.name) s_.out_trailer_store.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    s_.out_trailer_store.append(f.value);
    s_.out_trailers.emplace_back(f.name.size(), f.value.size());
  }
}

// Once submitted the status is the client's: nothing can replace it (only a reset can end the stream).
bool h2_sink::head_sent() const noexcept { return s_.submitted; }

body_source& h2_downstream::request_body() { return s_.source; }

task<bool> h2_downstream::reply(unsigned status, std::string_view body, bool) {
  if (s_.closed) {
    if (meter) meter->code = 499;
    co_return false;
  }
  if (s_.submitted) {  // a head went already: the stream can only be reset
    s_.reset(NGHTTP2_INTERNAL_ERROR);
    if (meter) meter->code = 502;
    co_return false;
  }
  if (s_.grpc()) {
    // A gRPC client reads a status, not a page: Trailers-Only (HTTP 200, the status in the only HEADERS).
    const unsigned code = grpc_status_for_local_reply(status);
    char digits[4];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, code);
    std::string_view message = body;
    while (!message.empty() && message.back() == '\n') message.remove_suffix(1);
    const std::vector<std::pair<std::string_view, std::string_view>> fields{
        {"server", "vane"},
        {"content-type", "application/grpc"},
        {"grpc-status", std::string_view(digits, end - digits)},
        {"grpc-message", message}};
    s_.out_last = true;
    submit_head(s_, 200, fields, true);
    if (meter) {
      meter->code = 200;
      meter->grpc_status = static_cast<int>(code);
    }
    co_return true;
  }
  char length[24];
  auto [end, ec] = std::to_chars(length, length + sizeof length, body.size());
  const std::vector<std::pair<std::string_view, std::string_view>> fields{
      {"server", "vane"}, {"content-type", "text/plain"}, {"content-length", std::string_view(length, end - length)}};
  s_.out.assign(body);
  s_.out_last = true;
  submit_head(s_, status, fields, false);
  if (meter) meter->code = status;
  co_return true;
}

body_sink& h2_downstream::respond(const message_head& head, const response_shape& shape) {
  auto& fields = s_.conn.fields_scratch();
  fields.clear();
  response_fields(head, {shape.ops, shape.cookies, false, connection_header::none}, fields);
  if (shape.no_body) s_.out_last = true;
  if (!s_.closed) submit_head(s_, head.status, fields, shape.no_body);  // (reset by the client: nothing to say)
  return s_.sink;
}

bool h2_downstream::end_response(relay_status status) {
  if (status != relay_status::ok && !s_.closed) s_.reset(NGHTTP2_INTERNAL_ERROR);
  return true;
}

// ---- the connection ----

h2_connection::h2_connection(worker& w, proxy_stream& client, const std::string& listener, std::string_view client_ip,
                             bool tls, worker::connection_entry& entry, listener_stats* stats)
    : w_(w),
      stats_(stats),
      entry_(entry),
      client_(client),
      listener_(listener),
      client_ip_(client_ip),
      tls_(tls),
      deadlines_(boost::asio::use_service<wake_deadlines>(client.get_executor().context())),
      writer_wake_(deadlines_),
      idle_wake_(deadlines_) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);  // windows open as bodies are relayed (h2_source::consume)
  // Closed streams are not kept for the priority tree (RFC 9113 deprecates
  // RFC 7540's priorities). The tree itself stays: it shares a connection
  // among its streams round-robin by weight, where RFC 9218's scheduler
  // (SETTINGS_NO_RFC7540_PRIORITIES) sends one stream's DATA before the next.
  nghttp2_option_set_no_closed_streams(opt, 1);
  nghttp2_session_server_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  const auto& h2 = limits().h2;
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2.max_concurrent_streams},
                                             {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h2.initial_stream_window},
                                             {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, h2.max_header_list},
                                             {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<std::int32_t>(h2.initial_connection_window));
}

int h2_connection::on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto& c = *static_cast<h2_connection*>(self);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  if (c.goaway_ && frame->hd.stream_id > c.goaway_last_) {
    // Past the GOAWAY queued (nghttp2 ignores new streams only once it is written): refused unseen,
    // so the client sends it again elsewhere and nothing runs twice (RFC 9113 §6.8, §8.7).
    nghttp2_submit_rst_stream(c.session_, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
    c.want_write();
    return 0;
  }
  c.streams_[frame->hd.stream_id] = std::make_unique<h2_stream>(c, frame->hd.stream_id, c.deadlines_, c.stats_);
  return 0;
}

int h2_connection::on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                             std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                             void* self) {
  auto& c = *static_cast<h2_connection*>(self);
  h2_stream* s = c.find(frame->hd.stream_id);
  if (!s) return 0;
  if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {  // the request's trailers
    if (!s->head_done || namelen == 0 || name[0] == ':') return 0;
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > c.limits().h2.max_header_list) return c.header_list_too_large();
    s->trailer_fields.push_back(
        {static_cast<std::uint32_t>(s->trailer_store.size()), static_cast<std::uint32_t>(namelen),
         static_cast<std::uint32_t>(s->trailer_store.size() + namelen), static_cast<std::uint32_t>(valuelen)});
    s->trailer_store.append(reinterpret_cast<const char*>(name), namelen);
    s->trailer_store.append(reinterpret_cast<const char*>(value), valuelen);
    return 0;
  }
  // RFC 7541 §4.1's entry size: a head past limits.h2.max_header_list resets the stream.
  s->header_bytes += namelen + valuelen + 32;
  if (s->header_bytes > c.limits().h2.max_header_list) return c.header_list_too_large();
  field_at f{static_cast<std::uint32_t>(s->store.size()), static_cast<std::uint32_t>(namelen), 0,
             static_cast<std::uint32_t>(valuelen)};
  s->store.append(reinterpret_cast<const char*>(name), namelen);
  f.value = static_cast<std::uint32_t>(s->store.size());
  s->store.append(reinterpret_cast<const char*>(value), valuelen);
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  if (n == ":method")
    s->method = f;
  else if (n == ":path")
    s->path = f;
  else if (n == ":authority")
    s->authority = f;
  else if (n == ":scheme")
    s->scheme = f;
  else if (!n.starts_with(':'))
    s->fields.push_back(f);
  return 0;
}

int h2_connection::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto& c = *static_cast<h2_connection*>(self);
  // Floods nghttp2 does not bound (Envoy's checks): DATA frames that carry nothing and end nothing, one
  // after another; WINDOW_UPDATE frames far beyond what the DATA frames sent to the client call for.
  if (const auto why = c.abuse_meter_.frame_received(frame->hd.type, frame->hd.length, frame->hd.flags)) {
    c.abuse(*why);
    return 0;
  }
  h2_stream* s = c.find(frame->hd.stream_id);
  if (!s) return 0;
  const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    s->head_done = true;
    s->request_ended = s->bodiless = end;
    s->running = true;
    ++c.running_;
    // Started once nghttp2 has taken the whole read (start_streams): nothing of a stream runs inside
    // nghttp2's input, and no handler is posted per stream.
    c.to_start_.push_back(s);
  } else if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) && end) {
    const std::string_view store(s->trailer_store);
    for (const auto& f : s->trailer_fields)
      s->trailer_views.push_back({store.substr(f.name, f.name_len), store.substr(f.value, f.value_len)});
    s->request_ended = true;
    s->in_wake.notify();
  }
  return 0;
}

int h2_connection::on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t stream_id, const std::uint8_t* data,
                                 std::size_t len, void* self) {
  auto& c = *static_cast<h2_connection*>(self);
  h2_stream* s = c.find(stream_id);
  if (!s || !s->running) {
    // A refused stream's, or one whose run ended (answered early, its reset not written yet): no one
    // will relay these bytes, and the connection's window must not stay shut for them.
    nghttp2_session_consume(c.session_, stream_id, len);
    return 0;
  }
  s->in_total += len;
  if (s->in_total > c.max_body()) s->too_large = true;
  if (!s->too_large)
    s->in_pending.append(reinterpret_cast<const char*>(data), len);
  else
    nghttp2_session_consume(c.session_, stream_id, len);  // dropped: its window must not stay shut
  s->in_wake.notify();
  return 0;
}

int h2_connection::on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto& c = *static_cast<h2_connection*>(self);
  c.abuse_meter_.frame_sent(frame->hd.type);
  if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
    // nghttp2's own verdict (a protocol error; ENHANCE_YOUR_CALM: its reset-rate or flood limits).
    c.count_error(frame->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM ? h2_error_reason::rapid_reset
                                                                        : h2_error_reason::protocol_error);
  }
  h2_stream* s = c.find(frame->hd.stream_id);
  if (!s) return 0;
  if (frame->hd.type == NGHTTP2_HEADERS) s->head_sent = true;
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    s->response_done = true;
    s->out_wake.notify();
  }
  return 0;
}

int h2_connection::on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code, void* self) {
  // Never a fatal error from here (nghttp2 before 1.55.1 leaks on one).
  auto& c = *static_cast<h2_connection*>(self);
  h2_stream* s = c.find(stream_id);
  if (!s) return 0;
  // Rapid reset (CVE-2023-44487), resets vane sends counted too (CVE-2025-8671): once enough streams
  // have closed, a connection where most were reset within a second of opening is ended (as Envoy's
  // premature-reset check).
  // A stream whose whole response went out is not a reset when it ends with NO_ERROR, even if its
  // request had not ended: vane answered before the upload ended and said the rest is not wanted
  // (RFC 9113 §8.1), work done, nothing the client did wrong. Any other code counts, from either side.
  const bool reset = error_code != NGHTTP2_NO_ERROR || !s->response_done;
  if (const auto why = c.abuse_meter_.stream_closed(reset, clock::now() - s->opened < std::chrono::seconds(1)))
    c.abuse(*why);
  s->close();
  if (!s->running) c.forget(stream_id);
  return 0;
}

void h2_connection::forget(std::int32_t id) {
  last_ = nullptr;
  streams_.erase(id);
}

void h2_connection::build_head(h2_stream& s, message_head& head) const {
  head.clear();
  head.version = 20;
  // Cookies split into several fields (RFC 9113 §8.2.3) are one field again for HTTP/1.1 upstreams.
  std::size_t cookies = 0;
  for (const auto& f : s.fields) cookies += s.view(f, true) == "cookie";
  if (cookies > 1) {
    field_at joined{static_cast<std::uint32_t>(s.store.size()), 6, 0, 0};
    s.store.append("cookie");
    joined.value = static_cast<std::uint32_t>(s.store.size());
    bool first = true;
    for (const auto& f : s.fields) {
      if (s.view(f, true) != "cookie") continue;
      if (!first) s.store.append("; ");
      s.store.append(s.view(f, false));
      first = false;
    }
    joined.value_len = static_cast<std::uint32_t>(s.store.size() - joined.value);
    std::erase_if(s.fields, [&](const field_at& f) { return s.view(f, true) == "cookie"; });
    s.fields.push_back(joined);
  }
  // Views into s.store only now: the join above may have moved it.
  if (s.method) head.method = s.view(*s.method, false);
  if (s.path) head.target = s.view(*s.path, false);
  // :authority stands for Host (RFC 9113 §8.3.1): the route's host match and the upstream's Host.
  for (const auto& f : s.fields) {
    const std::string_view name = s.view(f, true);
    if (s.authority && name == "host") continue;
    head.fields.push_back({http::string_to_field(name), name, s.view(f, false)});
  }
  if (s.authority) head.fields.push_back({http::field::host, "host", s.view(*s.authority, false)});
}

task<void> h2_connection::serve_stream(h2_stream& s) {
  // A stream closed before it started (reset in the read that opened it, or its connection ending)
  // costs nothing upstream.
  if (!s.closed) {
    std::shared_ptr<worker_policy> policy = w_.policy();  // NOLINT(performance-unnecessary-copy-initialization)
    const route_table& table = *policy->table;
    const std::size_t listener_index = table.find_listener(listener_);
    const worker::scratch_lease scratch(w_);
    message_head& head = scratch.s->request;
    build_head(s, head);
    request_meter meter(w_.access_log());
    meter.slot = policy->unrouted;
    meter.method = head.method;
    meter.version = 20;
    s.ds.meter = &meter;
    stream_request req;
    req.head = &head;
    req.client_ip = client_ip_;
    req.scheme = tls_ ? "https" : "http";
    req.has_body = !s.bodiless;  // (its DATA may have come already, with END_STREAM)
    const auto length = head.find(http::field::content_length);
    std::uint64_t n = 0;
    if (length && std::from_chars(length->data(), length->data() + length->size(), n).ec == std::errc{})
      req.content_length = n;
    req.body_length_unknown = req.has_body && !req.content_length;
    if (listener_index < table.listeners.size()) {
      const stream_context cx{w_, policy, listener_index, *scratch.s, meter};
      co_await run_stream(cx, req, s.ds);
    } else {
      co_await s.ds.reply(503, "listener removed\n", true);
    }
    // The response goes out whole before anything else is said about the stream, as the client's
    // window lets it. When neither this stream nor the connection moves for idle_timeout (a client
    // that stopped reading) the stream is given up (as flush() does); else it would hold the stream,
    // and the connection, for ever. (The connection's writes count: nghttp2 may send other streams
    // first, by their priorities.)
    bool given_up = false;
    auto until = clock::now() + io_timeout();
    std::size_t left = s.queued();
    while (s.submitted && !s.response_done && !s.closed) {
      const bool woken = co_await s.out_wake.wait(until);
      if (s.queued() < left) {  // progress: the wait starts again
        left = s.queued();
        until = clock::now() + io_timeout();
      } else if (!woken) {
        if (last_written_ + io_timeout() > clock::now()) {
          until = last_written_ + io_timeout();
          continue;
        }
        s.reset(NGHTTP2_CANCEL);
        given_up = true;
        break;
      }
    }
    if (!s.closed && !given_up) {
      if (!s.submitted)
        s.reset(NGHTTP2_INTERNAL_ERROR);
      else if (!s.request_ended)
        s.reset(NGHTTP2_NO_ERROR);  // answered before the request body ended: the rest is not wanted (RFC 9113 §8.1)
    }
    s.ds.meter = nullptr;
  }  // (the meter counts the request here)
  // What was received and never relayed still holds the connection's window: also the DATA of a
  // stream reset in the read that opened it (HEADERS, DATA, RST_STREAM), which never started.
  const std::size_t unread = s.in_pending.size() + s.in_ready.size();
  if (unread && !closing_) nghttp2_session_consume_connection(session_, unread);
  s.in_pending.clear();
  s.in_ready.clear();
  s.running = false;
  --running_;
  // The last stream ended: the connection may idle for idle_timeout from now (the reader's read,
  // begun while streams ran, has no deadline of its own).
  if (running_ == 0 && !closing_) client_.expires_after(io_timeout());
  want_write();
  idle_wake_.notify();
  if (s.closed) forget(s.id);
  if (w_.draining()) go_away();
}

void h2_connection::abuse(h2_error_reason why, std::uint32_t code) {
  if (closing_) return;
  count_error(why);
  log::debug("h2 from {}: {}: GOAWAY", client_ip_, h2_error_names[static_cast<std::size_t>(why)]);
  nghttp2_session_terminate_session(session_, code);  // nghttp2 reads no more; the GOAWAY is written, then we close
  want_write();
}

void h2_connection::go_away() {
  if (!goaway_ && !closing_) {
    goaway_ = true;
    goaway_last_ = nghttp2_session_get_last_proc_stream_id(session_);
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, goaway_last_, NGHTTP2_NO_ERROR, nullptr, 0);
    want_write();
  }
  if (running_ == 0 && !closing_) {
    // The reader ends (its read sees the end; a write in flight goes on), then the GOAWAY is flushed.
    boost::system::error_code ignored;
    client_.tcp().shutdown(asio::ip::tcp::socket::shutdown_receive, ignored);
  }
}

task<void> h2_connection::write_loop() {
  for (;;) {
    wbuf_.clear();
    while (wbuf_.size() < write_batch) {
      const std::uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0) {
        if (n < 0) log::debug("h2 from {}: {}", client_ip_, nghttp2_strerror(static_cast<int>(n)));
        break;
      }
      wbuf_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    if (!wbuf_.empty()) {
      auto [ec, n] = co_await asio::async_write(client_, asio::buffer(wbuf_), task_nothrow);
      if (ec) break;
      last_written_ = clock::now();
      continue;
    }
    if (closing_ || (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_))) break;
    co_await writer_wake_.wait();
  }
  writer_done_ = true;
  idle_wake_.notify();
  if (!closing_) {  // nghttp2 is done (a GOAWAY went) or the peer is gone: the reader stops too
    boost::system::error_code ignored;
    client_.tcp().cancel(ignored);
  }
}

task<void> h2_connection::run(boost::beast::flat_buffer& received) {
  asio::co_spawn(client_.get_executor(), write_loop(), asio::detached);
  const duration idle = io_timeout();
  for (;;) {
    if (received.size() > 0) {
      const auto in = received.data();
      const ssize_t n = nghttp2_session_mem_recv(session_, static_cast<const std::uint8_t*>(in.data()), in.size());
      if (n < 0)  // the connection ends: the streams its last read opened are not served
        for (h2_stream* s : to_start_) s->close();
      start_streams();  // (closed ones end at once)
      if (n < 0) {
        log::debug("h2 from {}: {}", client_ip_, nghttp2_strerror(static_cast<int>(n)));
        count_error(n == NGHTTP2_ERR_FLOODED                  ? h2_error_reason::flood
                    : n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ? h2_error_reason::continuation_flood
                                                              : h2_error_reason::protocol_error);
        break;
      }
      received.consume(static_cast<std::size_t>(n));
      want_write();
    }
    // nghttp2 reads no more once it has said GOAWAY (a protocol error, a bad preface): what it still
    // has to say is written, then the connection closes.
    if (!nghttp2_session_want_read(session_)) break;
    if (w_.draining() && running_ == 0) {
      go_away();
      break;
    }
    if (running_ == 0)
      client_.expires_after(idle);  // an idle connection closes after idle_timeout, as HTTP/1.1's
    else
      client_.expires_never();
    entry_.idle = running_ == 0;  // the end of a drain cancels this read
    auto [ec, n] = co_await client_.async_read_some(received.prepare(std::size_t{16} * 1024), task_nothrow);
    entry_.idle = false;
    if (ec) {
      if (ec == asio::error::operation_aborted && w_.draining()) go_away();
      break;
    }
    received.commit(n);
  }
  client_.expires_never();
  if (!writer_done_ && nghttp2_session_want_write(session_)) {
    // The last frames (a GOAWAY) go out first, within idle_timeout; an abusive client, which may not
    // read at all, gets a second.
    want_write();
    const duration flush = error_counted_ ? std::min<duration>(idle, std::chrono::seconds(1)) : idle;
    client_.expires_after(flush);
    const auto until = clock::now() + flush;
    while (!writer_done_ && nghttp2_session_want_write(session_) && co_await idle_wake_.wait(until)) {
    }
  }
  closing_ = true;
  for (auto& [id, s] : streams_) s->close();
  want_write();
  boost::system::error_code ignored;
  client_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  while (running_ > 0 || !writer_done_) co_await idle_wake_.wait();
}

}  // namespace

task<void> serve_h2(worker& w, proxy_stream& client, boost::beast::flat_buffer& received, const std::string& listener,
                    std::string_view client_ip, bool tls, worker::connection_entry& entry, listener_stats* stats) {
  h2_connection c(w, client, listener, client_ip, tls, entry, stats);
  co_await c.run(received);
}

}  // namespace vane::proxy
