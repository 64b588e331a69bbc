#include "proxy/connection.hpp"

#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include "common/log.hpp"
#include "filters/decision/decision.hpp"
#include "filters/fault/fault.hpp"
#include "filters/route_match/route_match.hpp"
#include "filters/rules/rules.hpp"
#include "filters/split/split.hpp"
#include "proxy/http1/head_out.hpp"
#include "proxy/http1/io.hpp"
#include "proxy/http1/request_view.hpp"
#include "proxy/request_checks.hpp"
#include "proxy/stream.hpp"
#include "proxy/tls.hpp"
#include "proxy/worker.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;
constexpr auto nothrow = task_nothrow;

namespace {

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

// A reply made by the proxy itself (no route, upstream failure, bad request),
// written from `buf` (the connection's). An HTTP/1.0 client (`client_version`
// 10) kept open is told so.
task<bool> local_reply(proxy_stream& client, std::string& buf, request_meter& meter, unsigned status,
                       std::string_view body, bool keep_alive, duration timeout, unsigned client_version = 11) {
  write_local_reply(status, body, connection_for(keep_alive, client_version), buf);
  client.expires_after(timeout);
  const error_code ec = co_await write_all(client, buf);
  meter.code = ec ? 499 : status;
  co_return !ec;
}

// The reply to a request whose body turned out bad (bad_input or too_large).
task<bool> bad_body_reply(proxy_stream& client, std::string& buf, request_meter& meter, relay_status status,
                          duration timeout) {
  const bool too_large = status == relay_status::too_large;
  return local_reply(client, buf, meter, too_large ? 413 : 400,
                     too_large ? "request body too large\n" : "bad request body\n", false, timeout);
}

struct failure_reply {
  unsigned status;
  std::string_view body;
};

failure_reply reply_for(acquire_error e) {
  switch (e) {
    case acquire_error::overflow:
      return {503, "upstream overflow\n"};
    case acquire_error::connect_timeout:
      return {504, "upstream connect timeout\n"};
    case acquire_error::pending_timeout:
      return {504, "upstream request timeout\n"};
    case acquire_error::no_healthy:
      return {503, "no healthy upstream\n"};
    case acquire_error::tls_failed:
      return {502, "upstream TLS handshake failed\n"};
    case acquire_error::connect_failed:
    case acquire_error::none:
      break;
  }
  return {502, "upstream connect error\n"};
}

// Envoy's shadow host: "-shadow" appended to the host, before any port.
std::string shadow_host(std::string_view host) {
  std::size_t colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos &&
      (host.front() != '[' || host[colon - 1] == ']'))
    return std::string(host.substr(0, colon)) + "-shadow" + std::string(host.substr(colon));
  return std::string(host) + "-shadow";
}

// Sends one mirror copy (`message`: head and body) and reads its answer to
// the end, discarding it; only the status and the duration are kept
// (vane_mirror_* of the route and the mirror cluster). Runs detached on the
// worker: nothing waits for it. The caller has counted it in the pool's
// requests; `policy` pins the pool.
task<void> send_mirror(std::shared_ptr<worker_policy> policy, std::size_t cluster, route_cluster_stats* stats,
                       std::string message, bool head_request, duration timeout, duration io_timeout) {
  upstream_pool& pool = *policy->mirror_pools[cluster];
  struct done {
    upstream_pool& pool;
    ~done() { pool.end_request(); }
  } guard{pool};
  const auto start = clock::now();
  unsigned code = 502;
  lease conn = co_await pool.acquire(start + timeout);
  if (conn.error != acquire_error::none) {
    code = reply_for(conn.error).status;
  } else {
    bool reusable = false;
    conn.conn->stream.expires_after(io_timeout);
    const error_code wec = co_await write_all(conn.conn->stream, message);
    if (!wec) {
      message_head head;
      std::string store;
      std::vector<std::string_view> pieces;
      h1_parser<false> res(head, pieces);
      res.body_limit(boost::none);
      if (head_request) res.skip(true);
      conn.conn->stream.expires_after(timeout);
      const error_code rec = co_await read_head(conn.conn->stream, conn.conn->buffer, res, store);
      if (rec == beast::error::timeout) {
        code = 504;
      } else if (!rec) {
        code = head.status;
        body_batch batch;
        auto status = relay_status::ok;
        while (!res.is_done() && status == relay_status::ok) {
          status = co_await next_batch(res, conn.conn->stream, conn.conn->buffer, batch, io_timeout);
          if (status == relay_status::ok) conn.conn->buffer.consume(batch.used);
        }
        shrink_after_body(conn.conn->buffer);
        reusable = status == relay_status::ok && res.is_done() && res.keep_alive();
      }
    }
    pool.release(std::move(conn.conn), reusable);
  }
  stats->mirror.get().add(code);
  stats->mirror_time.get().record(micros(clock::now() - start));
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

  error_code ec;
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
    client.expires_never();
    if (hec) {
      if (lstats) lstats->tls_handshake_errors.add();
      log::debug("listener {}: TLS handshake with {} failed: {}", listener_name, client_ip, hec.message());
      co_return;
    }
  }
  const std::string_view proto = tls ? "https" : "http";

  beast::flat_buffer buffer;                         // the connection's read buffer
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
      error_code rec = co_await read_some(client, buffer, 4096);
      reg.it->idle = false;
      if (rec == asio::error::operation_aborted && w.draining()) {
        // Cancelled by the drain: serve a request whose bytes are already here, else close.
        char byte;
        if (::recv(client.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) co_return;
        client.expires_after(limits.header_timeout);
        rec = co_await read_some(client, buffer, 4096);
      }
      if (rec) co_return;
    }
    reg.it->idle = false;
    // The request's scratch, from the worker, until the end of this iteration
    // (declared before all that points into it: the parser, the meter's views).
    struct scratch_lease {
      worker& w;
      std::unique_ptr<request_scratch> s;
      ~scratch_lease() { w.give_back(std::move(s)); }
    } scratch{w, w.take_scratch()};
    std::string& request_store = scratch.s->request_store;
    std::string& response_store = scratch.s->response_store;
    message_head& request = scratch.s->request;
    message_head& response_head = scratch.s->response;
    std::string& upstream_head = scratch.s->upstream_head;
    std::string& out_head = scratch.s->out_head;
    forwarded_fields& forwarded = scratch.s->forwarded;
    h1_parser<true> parser(request, scratch.s->request_pieces);
    request_meter meter(w.access_log());  // from the request's first byte here; ends before the parser
    meter.slot = policy->unrouted;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_request_headers));
    parser.body_limit(limits.max_body);
    client.expires_after(limits.header_timeout);
    const error_code hec = co_await read_head(client, buffer, parser, request_store);
    if (hec) {
      if (hec == http::error::end_of_stream || hec == http::error::partial_message ||
          hec == asio::error::connection_reset || hec == asio::error::eof)
        co_return;
      if (hec == beast::error::timeout) {
        // The deadline closed the socket already: as nginx, no 408 is sent.
        co_return;
      }
      if (hec == http::error::header_limit) {
        co_await local_reply(client, out_head, meter, 431, "request header too large\n", false, limits.idle_timeout);
      } else if (hec == http::error::body_limit) {
        co_await local_reply(client, out_head, meter, 413, "request body too large\n", false, limits.idle_timeout);
      } else {
        log::debug("bad request from {}: {}", client_ip, hec.message());
        co_await local_reply(client, out_head, meter, 400, "bad request\n", false, limits.idle_timeout);
      }
      client.socket().shutdown(tcp::socket::shutdown_both, ec);
      co_return;
    }

    const unsigned client_version = request.version;
    if (meter.log) {
      meter.method = request.method;
      meter.request_id = request.find("x-request-id").value_or(std::string_view{});
    }
    // While draining, every response asks the client to close (and reconnect elsewhere).
    ++served_on_connection;
    bool keep_alive =
        parser.keep_alive() && !w.draining() &&
        (limits.max_requests_per_connection == 0 || served_on_connection < limits.max_requests_per_connection);
    const bool has_body = !parser.is_done();

    request_target where;
    if (const auto refused = check_request(request, limits, where)) {
      co_await local_reply(client, out_head, meter, refused->status, refused->body, false, limits.idle_timeout);
      co_return;
    }
    const std::string_view target = where.target, host = where.host;
    std::string_view host_override = where.host_override;

    if (meter.log) meter.path = target;
    const compiled_route* route = table.match(listener_index, host, path_of_target(target));
    if (!route) {
      // A body we will not read would be taken for the next request: close instead.
      if (has_body) keep_alive = false;
      if (!co_await local_reply(client, out_head, meter, 404, "no route\n", keep_alive, limits.idle_timeout,
                                client_version) ||
          !keep_alive)
        co_return;
      continue;
    }

    affinity_cookies set_cookies{};
    const std::size_t pick =
        route->decision.pick(head_request_view(request, target, client_ip), policy->swrr[route->index], set_cookies);
    upstream_pool& pool = *policy->pools[route->clusters[pick]];
    route_cluster_stats& rstats = *policy->route_stats[route->index][pick];
    cluster_stats& cstats = *policy->cluster_counters[route->clusters[pick]];
    const cluster_target& picked = table.clusters[route->clusters[pick]];
    meter.slot = &rstats;
    meter.route = route->name;
    meter.cluster = picked.name;
    // HTTP/1.0 allows a request without Host; the HTTP/1.1 request sent
    // upstream must have one: the cluster's authority (docs/reliability.md).
    if (!where.has_host) host_override = picked.authority;

    // Overload: past limits.max_in_flight requests being proxied by this
    // worker, a 503 at once rather than a queue that grows (as Envoy's
    // overload manager answers).
    if (w.in_flight() >= limits.max_in_flight) {
      if (has_body) keep_alive = false;
      if (!co_await local_reply(client, out_head, meter, 503, "overloaded\n", keep_alive, limits.idle_timeout,
                                client_version) ||
          !keep_alive)
        co_return;
      continue;
    }
    worker::in_flight_guard busy(w);

    // The head for the upstream: HTTP/1.1 keep-alive, no hop-by-hop fields,
    // the route's header operations, the forwarding fields.
    const bool chunked_in = parser.chunked();
    const bool expects_continue =
        client_version >= 11 && has_body &&
        boost::beast::iequals(request.find(http::field::expect).value_or(std::string_view{}), "100-continue");
    forwarded.collect(request, client_ip, proto, listener.trust_forwarded);
    request_out how_upstream{target,     host_override,   &route->request_headers, &forwarded,
                             chunked_in, expects_continue};  // vane answers 100 Continue itself, as nginx does
    write_request_head(request, how_upstream, upstream_head);
    if (meter.log)
      meter.request_id = value_sent(request, &route->request_headers, "x-request-id").value_or(std::string_view{});

    // Fault injection: the route's (the client sees it; no upstream is asked),
    // then the picked cluster's (as if the cluster had answered: counted as
    // its upstream response, so a canary analysis sees it).
    const clock::time_point first_attempt_start = clock::now();
    std::optional<unsigned> fault_status;
    for (int level = 0; level < 2 && !fault_status; ++level) {
      const std::optional<fault_config>& fault = level == 0 ? route->fault : picked.fault;
      if (!fault) continue;
      auto& counts =
          level == 0 ? policy->route_fault_counts[route->index] : policy->cluster_fault_counts[route->clusters[pick]];
      const fault_outcome outcome = decide_fault(*fault, counts);
      if (outcome.delay) co_await sleep_for(*outcome.delay);
      if (outcome.abort) {
        fault_status = outcome.abort;
        if (level == 1) count_attempt(rstats, *fault_status, first_attempt_start);
      }
    }
    if (fault_status) {
      if (has_body) keep_alive = false;  // its body is not read
      if (!co_await local_reply(client, out_head, meter, *fault_status, "fault filter abort\n", keep_alive,
                                limits.idle_timeout, client_version) ||
          !keep_alive)
        co_return;
      continue;
    }

    const auto deadline = clock::now() + route->timeout;  // for getting a connection
    const bool head_request = request.method == "HEAD";

    // Mirroring: decided now, sent once the request body has been read.
    bool mirroring = false;
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
        mirroring = true;
        tee.cap = route->mirror->max_body;
      }
    }

    // The first piece of a request body is read (and checked) before
    // anything goes upstream: a broken chunk there is a 400 that no upstream
    // ever sees part of, as with nginx and HAProxy. An Expect: 100-continue
    // client is told to send it now.
    body_batch request_batch;
    struct shrink_when_done {  // a body's read room is handed back whatever way the request ends
      beast::flat_buffer* b;
      ~shrink_when_done() {
        if (b) shrink_after_body(*b);
      }
    } shrink{has_body ? &buffer : nullptr};
    if (has_body) {
      if (expects_continue) {
        static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
        client.expires_after(limits.idle_timeout);
        if (co_await write_all(client, continue_line)) {
          meter.code = 499;
          co_return;
        }
      }
      const auto status = co_await next_batch(parser, client, buffer, request_batch, limits.idle_timeout);
      if (status != relay_status::ok) {
        if (status == relay_status::read_failed)
          meter.code = 499;
        else
          co_await bad_body_reply(client, out_head, meter, status, limits.idle_timeout);
        co_return;
      }
    }

    lease conn;
    std::optional<h1_parser<false>> upstream_response;
    std::optional<failure_reply> failure;  // set when no response head arrived

    // Retries (route.retries): only when sending again is safe — nothing of
    // the client's body was consumed yet (or it has none), and an idempotent
    // method unless the upstream never got the request (connect failure) —
    // and within the cluster's retry budget on this worker.
    const retries_config* retries = route->retries ? &*route->retries : nullptr;
    const duration try_timeout =
        retries && retries->per_try_timeout ? std::min(*retries->per_try_timeout, route->timeout) : route->timeout;
    std::uint32_t retries_left = retries ? retries->attempts : 0;
    const bool idempotent = is_idempotent(request.method);
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
    auto should_retry = [&](retry_cause cause, unsigned code) {
      if (!retries || retries_left == 0 || !retry_wanted(retries->on, cause, code)) return false;
      if (has_body && request_batch.touched) return false;
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
    // and the request has no body. It is not counted as an attempt.
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
        count_attempt(rstats, failure->status, attempt_start);
        if (connect_failure && should_retry(retry_cause::connect_failure, 0)) continue;
        break;
      }
      const bool may_resend = conn.reused && !has_body && !resent_stale;
      meter.upstream = &picked.endpoints[conn.conn->endpoint];
      // The head goes out with the body's first batch in one write, then the
      // rest of the body batch by batch.
      relay_out up{&conn.conn->stream,  upstream_head,         chunked_in,
                   limits.idle_timeout, &meter.bytes_received, mirroring ? &tee : nullptr};
      const auto status = co_await relay_body(parser, client, buffer, request_batch, up);
      if (status != relay_status::ok && status != relay_status::write_failed) {
        pool.release(std::move(conn.conn), false);  // it has part of a request: never reused
        if (status == relay_status::read_failed)
          meter.code = 499;  // the client went away
        else
          co_await bad_body_reply(client, out_head, meter, status, limits.idle_timeout);
        co_return;
      }
      if (status == relay_status::write_failed) {
        pool.release(std::move(conn.conn), false);
        failure = failure_reply{502, "upstream reset before response\n"};
        if (may_resend) {
          resent_stale = fresh_only = true;
          continue;
        }
        count_attempt(rstats, 502, attempt_start);
        if (should_retry(retry_cause::reset, 502)) continue;
        break;
      }
      // Read the response head; 1xx interim responses (other than 101) are dropped.
      error_code rec;
      for (;;) {
        upstream_response.emplace(response_head, scratch.s->response_pieces);
        upstream_response->header_limit(
            static_cast<std::uint32_t>(std::max<std::uint64_t>(limits.max_request_headers, 65536)));
        upstream_response->body_limit(boost::none);
        if (head_request) upstream_response->skip(true);
        // As Envoy's route timeout: counted from the end of the request, so
        // that a long upload does not eat the upstream's time to answer.
        conn.conn->stream.expires_after(try_timeout);
        rec = co_await read_head(conn.conn->stream, conn.conn->buffer, *upstream_response, response_store);
        if (rec) break;
        const unsigned code = response_head.status;
        if (code < 100 || code >= 200 || code == 101) break;
      }
      if (!rec) {
        const unsigned code = response_head.status;
        if (code >= 500 && code <= 599 && should_retry(retry_cause::status, code)) {
          // Nothing of it went to the client: drop it (and its connection) and try again.
          count_attempt(rstats, code, attempt_start);
          pool.release(std::move(conn.conn), false);
          upstream_response.reset();
          continue;
        }
        break;  // a response head: relay it below
      }
      pool.release(std::move(conn.conn), false);
      upstream_response.reset();
      if (rec == beast::error::timeout) {
        failure = failure_reply{504, "upstream request timeout\n"};
        count_attempt(rstats, 504, attempt_start);
        if (should_retry(retry_cause::timeout, 504)) continue;
        break;
      }
      failure = failure_reply{502, "upstream reset before response\n"};
      if (may_resend && (rec == http::error::end_of_stream || rec == asio::error::connection_reset)) {
        resent_stale = fresh_only = true;
        continue;
      }
      count_attempt(rstats, 502, attempt_start);
      if (should_retry(retry_cause::reset, 502)) continue;
      break;
    }

    if (mirroring) {
      if (has_body && !parser.is_done()) {
        // The request body was not read to its end: nothing whole to copy.
      } else if (tee.over) {
        mirror_stats->mirror_shed_body.add();
      } else {
        // The copy is the request as sent upstream, to the shadow host, with
        // its body whole (Content-Length).
        const std::string shadow = shadow_host(host_override.empty() ? host : host_override);
        request_out how_mirror = how_upstream;
        how_mirror.host = shadow;
        how_mirror.chunked = false;
        how_mirror.drop_expect = true;
        if (has_body || request.find(http::field::content_length)) how_mirror.content_length = tee.data.size();
        std::string message;
        write_request_head(request, how_mirror, message);
        message.append(tee.data);
        std::size_t mirror_cluster = route->clusters[route->mirror->target];
        policy->mirror_pools[mirror_cluster]->begin_request();
        asio::co_spawn(client.get_executor(),
                       send_mirror(policy, mirror_cluster, mirror_stats, std::move(message), head_request,
                                   route->timeout, limits.idle_timeout),
                       asio::detached);
      }
    }

    if (failure) {
      if (has_body && !parser.is_done()) keep_alive = false;  // unread body bytes: cannot stay in sync
      if (!co_await local_reply(client, out_head, meter, failure->status, failure->body, keep_alive,
                                limits.idle_timeout, client_version) ||
          !keep_alive)
        co_return;
      continue;
    }

    h1_parser<false>& res = *upstream_response;
    const unsigned code = response_head.status;
    if (code == 101 || code > 599) {
      // We never forward Upgrade, so a switch is a protocol error; so is a status out of RFC 9110's range.
      pool.release(std::move(conn.conn), false);
      count_attempt(rstats, 502, attempt_start);
      co_await local_reply(client, out_head, meter, 502, "unexpected protocol switch\n", false, limits.idle_timeout);
      co_return;
    }
    const bool upstream_keep_alive = res.keep_alive();
    const bool no_body = head_request || code == 204 || code == 304;
    bool chunked_out = res.chunked();
    const bool close_delimited = !no_body && !chunked_out && !res.content_length() && !res.is_done();
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
    if (w.draining()) keep_alive = false;
    write_response_head(
        response_head,
        {&route->response_headers, set_cookies, chunked_out && !no_body, connection_for(keep_alive, client_version)},
        out_head);

    // The head goes out with the first batch of the body (all of a small
    // body that came with the head: one write), then batch by batch.
    body_batch response_batch;
    relay_out down{&client, out_head, chunked_out && !no_body, limits.idle_timeout, &meter.bytes_sent};
    const auto status = co_await relay_body(res, conn.conn->stream, conn.conn->buffer, response_batch, down);
    shrink_after_body(conn.conn->buffer);
    const bool upstream_reusable = upstream_keep_alive && status == relay_status::ok && res.is_done();
    pool.release(std::move(conn.conn), upstream_reusable);
    if (status != relay_status::ok && status != relay_status::write_failed && !down.head_sent) {
      // The upstream's body was bad (a broken chunk...) before anything went to the client: a 502 instead.
      count_attempt(rstats, 502, attempt_start);
      co_await local_reply(client, out_head, meter, 502, "upstream sent a bad response\n", false, limits.idle_timeout);
      co_return;
    }
    count_attempt(rstats, code, attempt_start);
    // The status was sent once the head went out, even if the body was cut short.
    meter.code = down.head_sent ? code : 499;
    if (status != relay_status::ok || !keep_alive) {
      if (status == relay_status::ok) client.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
  }
}

}  // namespace vane::proxy
