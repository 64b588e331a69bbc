#include "proxy/connection.hpp"

#include <sys/socket.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "common/log.hpp"
#include "filters/decision/decision.hpp"
#include "filters/route_match/route_match.hpp"
#include "filters/rules/rules.hpp"
#include "filters/split/split.hpp"
#include "proxy/head_rewrite.hpp"
#include "proxy/head_writer.hpp"
#include "proxy/stream.hpp"
#include "proxy/strict.hpp"
#include "proxy/tls.hpp"
#include "proxy/worker.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;
constexpr auto nothrow = task_nothrow;

namespace {

constexpr std::size_t relay_buffer_size = std::size_t{16} * 1024;

std::uint64_t micros(clock::duration d) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

// Counts one downstream request once, when its handling ends (whatever way
// it ends): by the status sent, or 499 when the client went away first; and
// its duration to the last byte sent. A request that never got a complete
// head (the client closed or was too slow) has no code and is not counted.
// With the access log on, it also queues the request's line: the views below
// point into the request head and the route table, both alive until the
// meter ends (it is declared after the parser).
struct request_meter {
  route_cluster_stats* slot = nullptr;
  unsigned code = 0;
  clock::time_point start = clock::now();
  access_ring* log = nullptr;
  std::string_view route = unrouted_label, cluster = unrouted_label, method, path, request_id;
  const tcp::endpoint* upstream = nullptr;
  std::uint64_t bytes_received = 0, bytes_sent = 0;

  explicit request_meter(access_ring* ring) : log(ring) {}
  request_meter(const request_meter&) = delete;
  request_meter& operator=(const request_meter&) = delete;
  ~request_meter() {
    if (!slot || !code) return;
    auto elapsed = clock::now() - start;
    slot->requests.get().add(code);
    slot->request_time.get().record(micros(elapsed));
    if (log) queue_line(elapsed);
  }
  void queue_line(clock::duration elapsed) const {
    access_record* r = log->reserve();
    if (!r) return;
    auto started = std::chrono::system_clock::now() - elapsed;
    r->start_unix_us = std::chrono::duration_cast<std::chrono::microseconds>(started.time_since_epoch()).count();
    r->duration_us = micros(elapsed);
    r->bytes_received = bytes_received;
    r->bytes_sent = bytes_sent;
    r->status = static_cast<std::uint16_t>(code);
    r->has_upstream = upstream != nullptr;
    if (upstream) r->upstream = *upstream;
    r->method.assign(method);
    r->route.assign(route);
    r->cluster.assign(cluster);
    r->request_id.assign(request_id);
    r->path.assign(path);
    log->commit();
  }
};

// Counts one upstream attempt by the upstream's status, or the status the
// proxy made of its failure.
void count_attempt(route_cluster_stats& slot, unsigned code, clock::time_point start) {
  slot.upstream.get().add(code);
  slot.upstream_time.get().record(micros(clock::now() - start));
}

// The Connection field of a response to a client of `client_version`: an
// HTTP/1.1 client keeps the connection unless told `close`; an HTTP/1.0
// client closes unless told `keep-alive` (RFC 9112 §9.3), and must never wait
// for a close that does not come.
template <class Body>
void set_keep_alive(http::response<Body>& res, bool keep_alive, unsigned client_version) {
  res.keep_alive(keep_alive);  // on the HTTP/1.1 message: "close", or nothing
  if (keep_alive && client_version < 11) res.set(http::field::connection, "keep-alive");
}

// A reply made by the proxy itself (no route, upstream failure, bad request).
// An HTTP/1.0 client (`client_version` 10) kept open is told so.
task<bool> local_reply(proxy_stream& client, request_meter& meter, http::status status, std::string_view body,
                       bool keep_alive, duration timeout, unsigned client_version = 11) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::server, "vane");
  res.set(http::field::content_type, "text/plain");
  res.body() = body;
  set_keep_alive(res, keep_alive, client_version);
  res.prepare_payload();
  client.expires_after(timeout);
  auto [ec, n] = co_await http::async_write(client, res, nothrow);
  meter.code = ec ? 499 : static_cast<unsigned>(status);
  co_return !ec;
}

// read_failed: the sender went away or stalled; bad_input: what it sent is
// not a valid body (a broken chunk...); too_large: past the body limit.
enum class relay_status { ok, read_failed, bad_input, too_large, write_failed };

// Reads a message head into the parser, as http::async_read_header does,
// but looks at the raw bytes first: Beast unfolds obs-fold silently, and
// vane refuses it (RFC 9112 §5.2 allows either; a proxy that rejects leaves
// no room for two parties to read one head differently). Beast's parser
// takes the head only once its blank line is here, so the unconsumed bytes
// always start at the head.
template <bool isRequest>
task<boost::system::error_code> read_head(proxy_stream& stream, beast::flat_buffer& buffer,
                                          http::parser<isRequest, http::buffer_body>& p) {
  boost::system::error_code ec;
  bool received = buffer.size() > 0;
  for (;;) {
    if constexpr (isRequest) {
      // Empty lines before a request line are ignored (RFC 9112 §2.2), as
      // some clients send a CRLF after a body; the parser has taken nothing yet.
      while (buffer.size() >= 2 && static_cast<const char*>(buffer.data().data())[0] == '\r' &&
             static_cast<const char*>(buffer.data().data())[1] == '\n')
        buffer.consume(2);
    }
    if (buffer.size() > 0) {
      std::string_view raw(static_cast<const char*>(buffer.data().data()), buffer.size());
      if (has_bad_line_break(raw)) co_return http::error::bad_value;
      std::size_t used = p.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec == http::error::need_more) ec = {};
      if (ec || p.is_header_done()) co_return ec;
    }
    auto [rec, n] = co_await stream.async_read_some(buffer.prepare(4096), nothrow);
    if (rec) {
      if (rec == asio::error::eof) co_return received ? http::error::partial_message : http::error::end_of_stream;
      co_return rec;
    }
    buffer.commit(n);
    received = true;
  }
}

// Streams a message body from `in` to `out` through `buf`, as Beast's relay
// example does: read what the parser gives into the buffer body, let the
// serializer frame it for the other side (Content-Length passes through,
// chunked is re-chunked), repeat. Memory stays at one buffer whatever the size.
// A copy of a body being relayed, kept up to a cap (for mirroring).
struct body_tee {
  std::string data;
  std::uint64_t cap = 0;
  bool over = false;  // the body was larger than cap: no copy
  void add(const char* p, std::size_t n) {
    if (over) return;
    if (data.size() + n > cap) {
      over = true;
      std::string().swap(data);
      return;
    }
    data.append(p, n);
  }
};

// Reads the next piece of a body through the parser into the connection's
// relay buffer (made on its first body and kept for its life): on ok, the
// parser's buffer body points at the piece (data, size), never empty unless
// the body has ended.
template <bool isRequest>
task<relay_status> read_body_piece(http::parser<isRequest, http::buffer_body>& p, proxy_stream& in,
                                   beast::flat_buffer& in_buffer, std::unique_ptr<char[]>& relay_buf,
                                   duration io_timeout) {
  // Beast sizes each read by the buffer's free capacity (512 bytes at least):
  // give it room for a whole relay buffer while the body streams (the caller
  // hands the memory back afterwards, so that idle connections stay small).
  in_buffer.reserve(relay_buffer_size);
  if (!relay_buf) relay_buf = std::make_unique<char[]>(relay_buffer_size);
  auto& body = p.get().body();
  do {
    body.data = relay_buf.get();
    body.size = relay_buffer_size;
    in.expires_after(io_timeout);
    auto [ec, n] = co_await http::async_read(in, in_buffer, p, nothrow);
    if (ec == http::error::need_buffer) ec = {};
    if (ec == http::error::body_limit) co_return relay_status::too_large;
    if (ec) {
      const bool bad = ec.category() == http::make_error_code(http::error::bad_chunk).category() &&
                       ec != http::error::partial_message && ec != http::error::end_of_stream;
      co_return bad ? relay_status::bad_input : relay_status::read_failed;
    }
    body.size = relay_buffer_size - body.size;
    body.data = relay_buf.get();
  } while (body.size == 0 && !p.is_done());
  co_return relay_status::ok;
}

// Streams a message body from `in` to `out`, as Beast's relay example does:
// read a piece through the parser, let the serializer frame it for the other
// side (Content-Length passes through, chunked is re-chunked), repeat. Memory
// stays at one buffer whatever the size. `piece_ready`: the first piece was
// read already (read_body_piece) and is sent first; cleared once it is.
// Adds the body bytes sent to `bytes`, and copies them into `tee` when given.
template <bool isRequest>
task<relay_status> relay_body(http::parser<isRequest, http::buffer_body>& p,
                              http::serializer<isRequest, http::buffer_body>& sr, proxy_stream& in,
                              beast::flat_buffer& in_buffer, proxy_stream& out, std::unique_ptr<char[]>& relay_buf,
                              duration io_timeout, std::uint64_t& bytes, body_tee* tee = nullptr,
                              bool* piece_ready = nullptr) {
  struct shrink_after {
    beast::flat_buffer& b;
    ~shrink_after() { b.shrink_to_fit(); }
  } shrink{in_buffer};
  do {
    auto& body = p.get().body();
    if (piece_ready && *piece_ready) {
      *piece_ready = false;
    } else if (!p.is_done()) {
      if (auto status = co_await read_body_piece(p, in, in_buffer, relay_buf, io_timeout); status != relay_status::ok)
        co_return status;
    } else {
      body.data = nullptr;
      body.size = 0;
    }
    bytes += body.size;
    if (tee && body.size) tee->add(static_cast<const char*>(body.data), body.size);
    // Beast's chunked serializer frames an empty buffer as a zero-size chunk,
    // which is the last-chunk: only "no buffer" says "nothing more to frame".
    if (body.size == 0) body.data = nullptr;
    body.more = !p.is_done();
    out.expires_after(io_timeout);
    auto [ec, n] = co_await http::async_write(out, sr, nothrow);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return relay_status::write_failed;
  } while (!p.is_done() && !sr.is_done());
  co_return relay_status::ok;
}

// Past max_headers fields or a field past max_header_field bytes (name and
// value): the reason for the 431, else nullptr. One walk over the fields.
const char* header_limit_exceeded(const http::fields& f, const limits_config& limits) {
  std::size_t count = 0;
  for (const auto& field : f) {
    if (++count > limits.max_headers) return "too many request headers\n";
    if (field.name_string().size() + field.value().size() > limits.max_header_field)
      return "request header field too large\n";
  }
  return nullptr;
}

// The reply to a request whose body turned out bad (bad_input or too_large).
task<bool> bad_body_reply(proxy_stream& client, request_meter& meter, relay_status status, duration timeout) {
  const bool too_large = status == relay_status::too_large;
  return local_reply(client, meter, too_large ? http::status::payload_too_large : http::status::bad_request,
                     too_large ? "request body too large\n" : "bad request body\n", false, timeout);
}

// Marks a serializer's head as written without producing it: the proxy
// writes its own head (write_head), then the serializer frames the body.
void skip_head(http::serializer<true, http::buffer_body>& sr) {
  sr.split(true);
  boost::system::error_code ec;
  while (!ec && !sr.is_header_done()) {
    std::size_t n = 0;
    sr.next(ec, [&n](boost::system::error_code&, const auto& buffers) { n = asio::buffer_size(buffers); });
    sr.consume(n);
  }
}

struct failure_reply {
  http::status status;
  std::string_view body;
};

failure_reply reply_for(acquire_error e) {
  switch (e) {
    case acquire_error::overflow:
      return {http::status::service_unavailable, "upstream overflow\n"};
    case acquire_error::connect_timeout:
      return {http::status::gateway_timeout, "upstream connect timeout\n"};
    case acquire_error::pending_timeout:
      return {http::status::gateway_timeout, "upstream request timeout\n"};
    case acquire_error::no_healthy:
      return {http::status::service_unavailable, "no healthy upstream\n"};
    case acquire_error::tls_failed:
      return {http::status::bad_gateway, "upstream TLS handshake failed\n"};
    case acquire_error::connect_failed:
    case acquire_error::none:
      break;
  }
  return {http::status::bad_gateway, "upstream connect error\n"};
}

// What rules and sticky hashing read of a request: views into its head.
class head_view final : public request_view {
 public:
  head_view(const http::fields& f, std::string_view target, std::string_view ip) : f_(f), target_(target), ip_(ip) {}
  std::optional<std::string_view> header(std::string_view name) const override {
    auto it = f_.find(name);
    if (it == f_.end()) return std::nullopt;
    return std::string_view(it->value());
  }
  std::vector<std::string_view> headers(std::string_view name) const override {
    std::vector<std::string_view> out;
    auto [b, e] = f_.equal_range(name);
    for (auto it = b; it != e; ++it) out.emplace_back(it->value());
    return out;
  }
  std::string_view target() const override { return target_; }
  std::string_view source_ip() const override { return ip_; }

 private:
  const http::fields& f_;
  std::string_view target_, ip_;
};

void apply_header_ops(http::fields& f, const header_ops& ops) {
  for (const auto& name : ops.remove) f.erase(name);
  for (const auto& [name, value] : ops.set) f.set(name, value);
  for (const auto& [name, value] : ops.add) f.insert(name, value);
}

// Envoy's shadow host: "-shadow" appended to the host, before any port.
std::string shadow_host(std::string_view host) {
  std::size_t colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos &&
      (host.front() != '[' || host[colon - 1] == ']'))
    return std::string(host.substr(0, colon)) + "-shadow" + std::string(host.substr(colon));
  return std::string(host) + "-shadow";
}

// Sends one mirror copy and reads its answer to the end, discarding it; only
// the status and the duration are kept (vane_mirror_* of the route and the
// mirror cluster). Runs detached on the worker: nothing waits for it. The
// caller has counted it in the pool's requests; `policy` pins the pool.
task<void> send_mirror(std::shared_ptr<worker_policy> policy, std::size_t cluster, route_cluster_stats* stats,
                       http::request<http::string_body> copy, duration timeout, duration io_timeout) {
  upstream_pool& pool = *policy->mirror_pools[cluster];
  struct done {
    upstream_pool& pool;
    ~done() { pool.end_request(); }
  } guard{pool};
  const auto start = clock::now();
  unsigned code = 502;
  lease conn = co_await pool.acquire(start + timeout);
  if (conn.error != acquire_error::none) {
    code = static_cast<unsigned>(reply_for(conn.error).status);
  } else {
    bool reusable = false;
    conn.conn->stream.expires_after(io_timeout);
    auto [wec, wn] = co_await http::async_write(conn.conn->stream, copy, nothrow);
    if (!wec) {
      http::response_parser<http::buffer_body> res;
      res.body_limit(boost::none);
      if (copy.method() == http::verb::head) res.skip(true);
      conn.conn->stream.expires_after(timeout);
      auto [rec, rn] = co_await http::async_read_header(conn.conn->stream, conn.conn->buffer, res, nothrow);
      if (rec == beast::error::timeout) {
        code = 504;
      } else if (!rec) {
        code = res.get().result_int();
        char scratch[8192];
        boost::system::error_code bec;
        while (!res.is_done() && !bec) {
          res.get().body().data = scratch;
          res.get().body().size = sizeof scratch;
          conn.conn->stream.expires_after(io_timeout);
          std::tie(bec, std::ignore) = co_await http::async_read(conn.conn->stream, conn.conn->buffer, res, nothrow);
          if (bec == http::error::need_buffer) bec = {};
        }
        reusable = !bec && res.is_done() && res.keep_alive();
      }
    }
    pool.release(std::move(conn.conn), reusable);
  }
  stats->mirror.get().add(code);
  stats->mirror_time.get().record(micros(clock::now() - start));
}

bool is_absolute_form(std::string_view target) {
  return target.size() > 7 && (beast::iequals(target.substr(0, 7), "http://") ||
                               (target.size() > 8 && beast::iequals(target.substr(0, 8), "https://")));
}

}  // namespace

task<void> serve_connection(worker& w, worker_socket socket, std::string listener_name, listener_stats* lstats) {
  proxy_stream client(std::move(socket));
  // The listener's TLS contexts as the current table has them: a certificate
  // rotation publishes a new table, and this connection keeps what it got.
  std::shared_ptr<const server_tls> tls;
  {
    const auto& policy = w.policy();  // no suspension in this block: a reference is enough
    std::size_t i = policy->table->find_listener(listener_name);
    if (i < policy->table->listeners.size()) tls = policy->table->listeners[i].tls;
  }
  struct registration {
    worker& w;
    std::list<worker::connection_entry>::iterator it;
    listener_stats* stats;
    ~registration() {
      w.unregister_connection(it);
      if (stats) stats->connections_active.add(-1);
    }
  } reg{w, w.register_connection(client.tcp()), lstats};  // counted in connections_active by the accept loop

  boost::system::error_code ec;
  client.socket().set_option(tcp::no_delay(true), ec);
  std::string client_ip;
  if (auto ep = client.socket().remote_endpoint(ec); !ec) client_ip = ep.address().to_string();

  if (tls) {
    // Plain HTTP, garbage or a client that never finishes (handshake_timeout)
    // fails here: that connection is closed and counted, nothing else changes.
    auto& s = client.start_tls(tls->context());
    reg.it->stream = &client.tcp();
    client.expires_after(tls->config().handshake_timeout);
    auto [hec] = co_await s.async_handshake(asio::ssl::stream_base::server, nothrow);
    if (hec) {
      if (lstats) lstats->tls_handshake_errors.add();
      log::debug("listener {}: TLS handshake with {} failed: {}", listener_name, client_ip, hec.message());
      co_return;
    }
  }
  const std::string_view proto = tls ? "https" : "http";

  beast::flat_buffer buffer;
  std::unique_ptr<char[]> relay_buf;                 // see relay_body
  std::string head_buf;                              // the heads written by write_head, reused
  forwarded_fields forwarded;                        // the forwarding lines added to each request head, reused
  std::shared_ptr<const route_table> indexed_table;  // held, so its address cannot be reused
  std::size_t listener_index = 0;
  std::uint32_t served_on_connection = 0;

  for (;;) {
    // The snapshot this request runs on, whatever is swapped in meanwhile.
    // A copy, not a reference: it pins the snapshot while the worker swaps in new ones.
    std::shared_ptr<worker_policy> policy = w.policy();  // NOLINT(performance-unnecessary-copy-initialization)
    const route_table& table = *policy->table;
    if (indexed_table.get() != &table) {
      listener_index = table.find_listener(listener_name);
      indexed_table = policy->table;
      if (listener_index == table.listeners.size()) co_return;  // the listener was removed by a reload
    }
    const limits_config& limits = table.config.limits;
    const compiled_listener& listener = table.listeners[listener_index];

    // Between requests the connection may idle for idle_timeout; once the
    // first byte arrived, the whole head must come within header_timeout.
    if (buffer.size() == 0) {
      client.expires_after(limits.idle_timeout);
      reg.it->idle = true;  // the end of a drain may cancel this read
      auto [rec, n] = co_await client.async_read_some(buffer.prepare(4096), nothrow);
      reg.it->idle = false;
      if (rec == asio::error::operation_aborted && w.draining()) {
        // Cancelled by the drain: serve a request whose bytes are already here, else close.
        char byte;
        if (::recv(client.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) co_return;
        client.expires_after(limits.header_timeout);
        std::tie(rec, n) = co_await client.async_read_some(buffer.prepare(4096), nothrow);
      }
      if (rec) co_return;
      buffer.commit(n);
    }
    reg.it->idle = false;
    http::request_parser<http::buffer_body> parser;
    request_meter meter(w.access_log());  // from the request's first byte here; ends before the parser
    meter.slot = policy->unrouted;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_request_headers));
    parser.body_limit(limits.max_body);
    client.expires_after(limits.header_timeout);
    auto hec = co_await read_head(client, buffer, parser);
    if (hec) {
      if (hec == http::error::end_of_stream || hec == http::error::partial_message ||
          hec == asio::error::connection_reset || hec == asio::error::eof)
        co_return;
      if (hec == beast::error::timeout) {
        // beast::tcp_stream has closed the socket already: as nginx, no 408 is sent.
        co_return;
      }
      if (hec == http::error::header_limit) {
        co_await local_reply(client, meter, http::status::request_header_fields_too_large, "request header too large\n",
                             false, limits.idle_timeout);
      } else if (hec == http::error::body_limit) {
        co_await local_reply(client, meter, http::status::payload_too_large, "request body too large\n", false,
                             limits.idle_timeout);
      } else {
        log::debug("bad request from {}: {}", client_ip, hec.message());
        co_await local_reply(client, meter, http::status::bad_request, "bad request\n", false, limits.idle_timeout);
      }
      client.socket().shutdown(tcp::socket::shutdown_both, ec);
      co_return;
    }

    auto& req = parser.get();
    const unsigned client_version = req.version();
    if (meter.log) {
      meter.method = req.method_string();
      meter.request_id = req["x-request-id"];
    }
    // While draining, every response asks the client to close (and reconnect elsewhere).
    ++served_on_connection;
    bool keep_alive =
        req.keep_alive() && !w.draining() &&
        (limits.max_requests_per_connection == 0 || served_on_connection < limits.max_requests_per_connection);
    const bool has_body = !parser.is_done();

    if (const char* why = header_limit_exceeded(req, limits)) {
      co_await local_reply(client, meter, http::status::request_header_fields_too_large, why, false,
                           limits.idle_timeout);
      co_return;
    }
    std::size_t hosts = req.count(http::field::host);
    if (hosts > 1 || (hosts == 0 && client_version >= 11)) {
      co_await local_reply(client, meter, http::status::bad_request, "bad request: exactly one Host header required\n",
                           false, limits.idle_timeout);
      co_return;
    }

    if (req.target().size() > limits.max_request_target) {
      co_await local_reply(client, meter, http::status::uri_too_long, "request target too long\n", false,
                           limits.idle_timeout);
      co_return;
    }
    if (!acceptable_request_transfer_encoding(req, client_version) || !valid_host(req[http::field::host])) {
      co_await local_reply(client, meter, http::status::bad_request, "bad request framing or Host\n", false,
                           limits.idle_timeout);
      co_return;
    }

    std::string_view target = req.target();
    std::string_view host = req[http::field::host];
    std::string absolute_host;  // only for absolute-form targets (RFC 9112 §3.2.2): rare
    if (is_absolute_form(target)) {
      auto rest = target.substr(target.find("//") + 2);
      auto slash = rest.find('/');
      absolute_host = std::string(rest.substr(0, slash));
      host = absolute_host;
      std::string origin(slash == std::string_view::npos ? "/" : rest.substr(slash));
      req.target(origin);
      req.set(http::field::host, absolute_host);
      target = req.target();
    } else if (target.empty() || (target.front() != '/' && target != "*")) {
      co_await local_reply(client, meter, http::status::bad_request, "bad request target\n", false,
                           limits.idle_timeout);
      co_return;
    }

    if (meter.log) meter.path = target;
    const compiled_route* route = table.match(listener_index, host, path_of_target(target));
    if (!route) {
      // A body we will not read would be taken for the next request: close instead.
      if (has_body) keep_alive = false;
      if (!co_await local_reply(client, meter, http::status::not_found, "no route\n", keep_alive, limits.idle_timeout,
                                client_version) ||
          !keep_alive)
        co_return;
      continue;
    }

    affinity_cookies set_cookies{};
    const std::size_t pick =
        route->decision.pick(head_view(req, target, client_ip), policy->swrr[route->index], set_cookies);
    upstream_pool& pool = *policy->pools[route->clusters[pick]];
    route_cluster_stats& rstats = *policy->route_stats[route->index][pick];
    cluster_stats& cstats = *policy->cluster_counters[route->clusters[pick]];
    meter.slot = &rstats;
    meter.route = route->name;
    meter.cluster = table.clusters[route->clusters[pick]].name;
    // HTTP/1.0 allows a request without Host; the HTTP/1.1 request sent
    // upstream must have one: the cluster's authority (docs/reliability.md).
    if (hosts == 0) req.set(http::field::host, table.clusters[route->clusters[pick]].authority);

    // Overload: past limits.max_in_flight requests being proxied by this
    // worker, a 503 at once rather than a queue that grows (as Envoy's
    // overload manager answers).
    if (w.in_flight() >= limits.max_in_flight) {
      if (has_body) keep_alive = false;
      if (!co_await local_reply(client, meter, http::status::service_unavailable, "overloaded\n", keep_alive,
                                limits.idle_timeout, client_version) ||
          !keep_alive)
        co_return;
      continue;
    }
    worker::in_flight_guard busy(w);

    // Rewrite the head for the upstream: HTTP/1.1 keep-alive, no hop-by-hop fields.
    const bool chunked_in = parser.chunked();
    const bool expects_continue =
        client_version >= 11 && beast::iequals(req[http::field::expect], "100-continue") && has_body;
    remove_hop_by_hop(req);
    if (expects_continue) req.erase(http::field::expect);  // we answer 100 Continue ourselves, as nginx does
    apply_header_ops(req, route->request_headers);
    if (meter.log) meter.request_id = req["x-request-id"];  // again: the removal may have freed the field
    if (chunked_in) req.chunked(true);
    req.version(11);
    forwarded.rewrite(req, client_ip, proto, listener.trust_forwarded);

    // Fault injection: the route's (the client sees it; no upstream is asked),
    // then the picked cluster's (as if the cluster had answered: counted as
    // its upstream response, so a canary analysis sees it).
    const cluster_target& picked = table.clusters[route->clusters[pick]];
    const clock::time_point first_attempt_start = clock::now();
    std::optional<unsigned> fault_status;
    for (int level = 0; level < 2 && !fault_status; ++level) {
      const std::optional<fault_config>& fault = level == 0 ? route->fault : picked.fault;
      if (!fault) continue;
      auto& counts =
          level == 0 ? policy->route_fault_counts[route->index] : policy->cluster_fault_counts[route->clusters[pick]];
      if (fault->delay && exact_share_hit(counts[1], fault->delay->per_10k)) {
        worker_timer timer(client.get_executor(), fault->delay->delay);
        co_await timer.async_wait(nothrow);
      }
      if (fault->abort && exact_share_hit(counts[0], fault->abort->per_10k)) {
        fault_status = fault->abort->status;
        if (level == 1) count_attempt(rstats, *fault_status, first_attempt_start);
      }
    }
    if (fault_status) {
      if (has_body) keep_alive = false;  // its body is not read
      if (!co_await local_reply(client, meter, static_cast<http::status>(*fault_status), "fault filter abort\n",
                                keep_alive, limits.idle_timeout, client_version) ||
          !keep_alive)
        co_return;
      continue;
    }

    const auto deadline = clock::now() + route->timeout;  // for getting a connection
    const bool head_request = req.method() == http::verb::head;

    // Mirroring: decided now, sent once the request body has been read.
    std::optional<http::request<http::string_body>> mirror_copy;
    body_tee tee;
    route_cluster_stats* mirror_stats = nullptr;
    if (route->mirror && exact_share_hit(policy->mirror_counts[route->index], route->mirror->per_10k)) {
      mirror_stats = policy->route_stats[route->index][route->mirror->target];
      upstream_pool& mpool = *policy->mirror_pools[route->clusters[route->mirror->target]];
      const auto declared = parser.content_length();
      if (declared && *declared > route->mirror->max_body) {
        mirror_stats->mirror_shed_body.add();
      } else if (mpool.active_requests() >= mpool.max_connections()) {
        mirror_stats->mirror_shed_overload.add();  // the mirror is slow: copies are shed, never queued
      } else {
        mirror_copy.emplace(http::request_header<>(req.base()));
        forwarded.set_on(*mirror_copy);
        mirror_copy->set(http::field::host, shadow_host(req[http::field::host]));
        tee.cap = route->mirror->max_body;
      }
    }

    // The first piece of a request body is read (and checked) before
    // anything goes upstream: a broken chunk there is a 400 that no upstream
    // ever sees part of, as with nginx and HAProxy. An Expect: 100-continue
    // client is told to send it now.
    bool piece_ready = false;
    struct shrink_when_done {  // a body's relay buffer room is handed back whatever way the request ends
      beast::flat_buffer* b;
      ~shrink_when_done() {
        if (b) b->shrink_to_fit();
      }
    } shrink{has_body ? &buffer : nullptr};
    if (has_body) {
      if (expects_continue) {
        static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
        client.expires_after(limits.idle_timeout);
        auto [cec, cn] = co_await asio::async_write(client, asio::buffer(continue_line), nothrow);
        if (cec) {
          meter.code = 499;
          co_return;
        }
      }
      const auto status = co_await read_body_piece(parser, client, buffer, relay_buf, limits.idle_timeout);
      if (status != relay_status::ok) {
        if (status == relay_status::read_failed)
          meter.code = 499;
        else
          co_await bad_body_reply(client, meter, status, limits.idle_timeout);
        co_return;
      }
      piece_ready = true;
    }

    lease conn;
    std::optional<http::response_parser<http::buffer_body>> response;
    std::optional<failure_reply> failure;  // set when no response head arrived

    // Retries (route.retries): only when sending again is safe — nothing of
    // the client's body was read yet (or it has none), and an idempotent
    // method unless the upstream never got the request (connect failure) —
    // and within the cluster's retry budget on this worker.
    const retries_config* retries = route->retries ? &*route->retries : nullptr;
    const duration try_timeout =
        retries && retries->per_try_timeout ? std::min(*retries->per_try_timeout, route->timeout) : route->timeout;
    std::uint32_t retries_left = retries ? retries->attempts : 0;
    const bool idempotent = is_idempotent(req.method_string());
    struct in_flight {
      upstream_pool& pool;
      bool retrying = false;
      explicit in_flight(upstream_pool& p) : pool(p) { pool.begin_request(); }
      in_flight(const in_flight&) = delete;
      in_flight& operator=(const in_flight&) = delete;
      ~in_flight() {
        if (retrying) pool.end_retry();
        pool.end_request();
      }
    } flight(pool);
    auto should_retry = [&](retry_cause cause, unsigned code, bool body_untouched) {
      if (!retries || retries_left == 0 || !retry_wanted(retries->on, cause, code)) return false;
      if (has_body && !body_untouched) return false;
      if (cause != retry_cause::connect_failure && !idempotent) return false;
      if (flight.retrying) pool.end_retry();
      flight.retrying = pool.try_begin_retry(retries->budget_per_10k, retries->budget_min);
      if (!flight.retrying) return false;
      --retries_left;
      rstats.retries.add();
      return true;
    };

    // Besides retries, one resend: when the first try went to an idle pooled
    // connection that the upstream had closed before reading anything of ours
    // and the client's body is untouched. It is not counted as an attempt.
    bool resent_stale = false;
    bool fresh_only = false;
    clock::time_point attempt_start;
    for (int attempt = 0;; ++attempt) {
      failure.reset();
      attempt_start = attempt == 0 ? first_attempt_start : clock::now();
      const bool resendable = !has_body && !resent_stale;
      conn = co_await pool.acquire(deadline, fresh_only, resendable);
      fresh_only = false;
      if (conn.error != acquire_error::none) {
        const bool connect_failure =
            conn.error == acquire_error::connect_failed || conn.error == acquire_error::connect_timeout;
        if (connect_failure || conn.error == acquire_error::tls_failed) cstats.connect_errors.add();
        failure = reply_for(conn.error);
        count_attempt(rstats, static_cast<unsigned>(failure->status), attempt_start);
        if (connect_failure && should_retry(retry_cause::connect_failure, 0, true)) continue;
        break;
      }
      const bool may_resend = conn.reused && !has_body && !resent_stale;
      meter.upstream = &table.clusters[route->clusters[pick]].endpoints[conn.conn->endpoint];
      // The head goes out as one buffer written here; a body after it through
      // Beast's serializer, which frames it (its own head is skipped).
      std::optional<http::serializer<true, http::buffer_body>> sr;
      if (has_body) {
        sr.emplace(req);
        skip_head(*sr);
      }
      write_head(req, head_buf, forwarded.lines());
      conn.conn->stream.expires_after(limits.idle_timeout);
      auto [wec, wn] = co_await asio::async_write(conn.conn->stream, asio::buffer(head_buf), nothrow);
      if (wec) {
        pool.release(std::move(conn.conn), false);
        failure = failure_reply{http::status::bad_gateway, "upstream reset before response\n"};
        if (may_resend) {
          resent_stale = fresh_only = true;
          continue;
        }
        count_attempt(rstats, 502, attempt_start);
        if (should_retry(retry_cause::reset, 502, true)) continue;
        break;
      }
      auto status = relay_status::ok;
      if (has_body)
        status = co_await relay_body(parser, *sr, client, buffer, conn.conn->stream, relay_buf, limits.idle_timeout,
                                     meter.bytes_received, mirror_copy ? &tee : nullptr, &piece_ready);
      if (status != relay_status::ok && status != relay_status::write_failed) {
        pool.release(std::move(conn.conn), false);  // it has part of a request: never reused
        if (status == relay_status::read_failed)
          meter.code = 499;  // the client went away
        else
          co_await bad_body_reply(client, meter, status, limits.idle_timeout);
        co_return;
      }
      if (status == relay_status::write_failed) {
        pool.release(std::move(conn.conn), false);
        failure = failure_reply{http::status::bad_gateway, "upstream reset before response\n"};
        if (may_resend) {
          resent_stale = fresh_only = true;
          continue;
        }
        count_attempt(rstats, 502, attempt_start);
        if (should_retry(retry_cause::reset, 502, false)) continue;
        break;
      }
      // Read the response head; 1xx interim responses (other than 101) are dropped.
      boost::system::error_code rec;
      for (;;) {
        response.emplace();
        response->header_limit(static_cast<std::uint32_t>(std::max<std::uint64_t>(limits.max_request_headers, 65536)));
        response->body_limit(boost::none);
        if (head_request) response->skip(true);
        // As Envoy's route timeout: counted from the end of the request, so
        // that a long upload does not eat the upstream's time to answer.
        conn.conn->stream.expires_after(try_timeout);
        rec = co_await read_head(conn.conn->stream, conn.conn->buffer, *response);
        if (rec) break;
        unsigned code = response->get().result_int();
        if (code < 100 || code >= 200 || code == 101) break;
      }
      if (!rec) {
        const unsigned code = response->get().result_int();
        if (code >= 500 && code <= 599 && should_retry(retry_cause::status, code, false)) {
          // Nothing of it went to the client: drop it (and its connection) and try again.
          count_attempt(rstats, code, attempt_start);
          pool.release(std::move(conn.conn), false);
          response.reset();
          continue;
        }
        break;  // a response head: relay it below
      }
      pool.release(std::move(conn.conn), false);
      response.reset();
      if (rec == beast::error::timeout) {
        failure = failure_reply{http::status::gateway_timeout, "upstream request timeout\n"};
        count_attempt(rstats, 504, attempt_start);
        if (should_retry(retry_cause::timeout, 504, false)) continue;
        break;
      }
      failure = failure_reply{http::status::bad_gateway, "upstream reset before response\n"};
      if (may_resend && (rec == http::error::end_of_stream || rec == asio::error::connection_reset)) {
        resent_stale = fresh_only = true;
        continue;
      }
      count_attempt(rstats, 502, attempt_start);
      if (should_retry(retry_cause::reset, 502, false)) continue;
      break;
    }

    if (mirror_copy) {
      if (has_body && !parser.is_done()) {
        // The request body was not read to its end: nothing whole to copy.
      } else if (tee.over) {
        mirror_stats->mirror_shed_body.add();
      } else {
        mirror_copy->body() = std::move(tee.data);
        mirror_copy->prepare_payload();
        std::size_t mirror_cluster = route->clusters[route->mirror->target];
        policy->mirror_pools[mirror_cluster]->begin_request();
        asio::co_spawn(client.get_executor(),
                       send_mirror(policy, mirror_cluster, mirror_stats, std::move(*mirror_copy), route->timeout,
                                   limits.idle_timeout),
                       asio::detached);
      }
    }

    if (failure) {
      if (has_body && !parser.is_done()) keep_alive = false;  // unread body bytes: cannot stay in sync
      if (!co_await local_reply(client, meter, failure->status, failure->body, keep_alive, limits.idle_timeout,
                                client_version) ||
          !keep_alive)
        co_return;
      continue;
    }

    auto& res = response->get();
    if (res.result_int() == 101 || res.result_int() > 599) {
      // We never forward Upgrade, so a switch is a protocol error; so is a status out of RFC 9110's range.
      pool.release(std::move(conn.conn), false);
      count_attempt(rstats, 502, attempt_start);
      co_await local_reply(client, meter, http::status::bad_gateway, "unexpected protocol switch\n", false,
                           limits.idle_timeout);
      co_return;
    }
    const bool upstream_keep_alive = res.keep_alive();
    const unsigned code = res.result_int();
    const bool no_body = head_request || code == 204 || code == 304;
    bool chunked_out = response->chunked();
    const bool close_delimited = !no_body && !chunked_out && !response->content_length() && !response->is_done();
    remove_hop_by_hop(res);
    apply_header_ops(res, route->response_headers);
    for (const std::string* cookie : set_cookies)
      if (cookie) res.insert(http::field::set_cookie, *cookie);
    if (close_delimited) {
      // The upstream ends its body by closing: re-frame it as chunked for an
      // HTTP/1.1 client; an HTTP/1.0 client gets it the same way, then close.
      if (client_version >= 11)
        chunked_out = true;
      else
        keep_alive = false;
    }
    if (chunked_out && client_version < 11) {
      chunked_out = false;
      keep_alive = false;
    }
    if (chunked_out) res.chunked(true);
    res.version(11);
    if (w.draining()) keep_alive = false;
    set_keep_alive(res, keep_alive, client_version);

    bool upstream_reusable = upstream_keep_alive;
    if (const auto length = response->content_length();
        !no_body && !chunked_out && length && *length <= conn.conn->buffer.size()) {
      // The whole body came with the head (small responses): head and body in
      // one write, the body straight from the upstream connection's buffer.
      write_head(res, head_buf);
      const auto body = static_cast<std::size_t>(*length);
      const std::array<asio::const_buffer, 2> out{asio::buffer(head_buf),
                                                  asio::buffer(conn.conn->buffer.data().data(), body)};
      client.expires_after(limits.idle_timeout);
      auto [wec, wn] = co_await asio::async_write(client, out, nothrow);
      conn.conn->buffer.consume(body);
      meter.bytes_sent += body;
      pool.release(std::move(conn.conn), upstream_reusable);
      count_attempt(rstats, code, attempt_start);
      meter.code = wec ? 499 : code;
      if (wec || !keep_alive) {
        if (!wec) client.socket().shutdown(tcp::socket::shutdown_send, ec);
        co_return;
      }
      continue;
    }
    http::serializer<false, http::buffer_body> rsr(res);
    if (no_body) {
      rsr.split(true);
      client.expires_after(limits.idle_timeout);
      auto [wec, wn] = co_await http::async_write_header(client, rsr, nothrow);
      upstream_reusable = upstream_reusable && response->is_done();
      pool.release(std::move(conn.conn), upstream_reusable);
      count_attempt(rstats, code, attempt_start);
      meter.code = wec ? 499 : code;
      if (wec || !keep_alive) co_return;
      continue;
    }
    auto status = co_await relay_body(*response, rsr, conn.conn->stream, conn.conn->buffer, client, relay_buf,
                                      limits.idle_timeout, meter.bytes_sent);
    upstream_reusable = upstream_reusable && status == relay_status::ok && response->is_done();
    pool.release(std::move(conn.conn), upstream_reusable);
    if (status != relay_status::ok && status != relay_status::write_failed && !rsr.is_header_done()) {
      // The upstream's body was bad (a broken chunk...) before anything went to the client: a 502 instead.
      count_attempt(rstats, 502, attempt_start);
      co_await local_reply(client, meter, http::status::bad_gateway, "upstream sent a bad response\n", false,
                           limits.idle_timeout);
      co_return;
    }
    count_attempt(rstats, code, attempt_start);
    // The status was sent once the head went out, even if the body was cut short.
    meter.code = rsr.is_header_done() ? code : 499;
    if (status != relay_status::ok || !keep_alive) {
      if (status == relay_status::ok) client.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
  }
}

}  // namespace vane::proxy
