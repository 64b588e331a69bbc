#include "proxy/request_stream.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/string.hpp>

#include "filters/decision/decision.hpp"
#include "filters/fault/fault.hpp"
#include "filters/mirror/mirror.hpp"
#include "filters/retry/retry.hpp"
#include "proxy/http1/head_out.hpp"
#include "proxy/http1/request_view.hpp"
#include "proxy/request_checks.hpp"
#include "proxy/upstream_attempt.hpp"
#include "proxy/worker.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

// What the steps decided so far: each step reads it and fills its part.
struct stream_state {
  const stream_context& cx;
  const stream_request& req;
  const message_head& head;
  worker_policy& policy;
  const route_table& table;
  request_target where;
  const compiled_route* route = nullptr;
  std::size_t pick = 0;  // the target in route->clusters
  const cluster_target* picked = nullptr;
  upstream_pool* pool = nullptr;
  route_cluster_stats* rstats = nullptr;
  affinity_cookies cookies{};
  std::optional<worker::in_flight_guard> busy;
  request_out how_upstream;
  clock::time_point first_attempt_start;
  route_cluster_stats* mirror_stats = nullptr;  // set: a copy goes to the mirror
  body_tee tee;
};

// Host, target and framing (proxy/request_checks): a refusal closes the connection.
step_result check_step(stream_state& s) {
  if (const auto refused = check_request(s.head, s.table.limits, s.where))
    return step_result::stop(refused->status, refused->body, true);
  if (s.cx.meter.log) s.cx.meter.path = s.where.target;
  return step_result::next();
}

step_result route_step(stream_state& s) {
  s.route = s.table.match(s.cx.listener, s.where.host, path_of_target(s.where.target));
  return s.route ? step_result::next() : step_result::stop(404, "no route\n");
}

// Rules, session affinity, sticky hashing and the weighted split (filters/decision).
step_result split_step(stream_state& s) {
  const compiled_route& route = *s.route;
  s.pick = route.decision.pick(head_request_view(s.head, s.where.target, s.req.client_ip), s.policy.swrr[route.index],
                               s.cookies);
  const std::size_t cluster = route.clusters[s.pick];
  s.pool = s.policy.pools[cluster].get();
  s.rstats = s.policy.route_stats[route.index][s.pick];
  s.picked = &s.table.clusters[cluster];
  s.cx.meter.slot = s.rstats;
  s.cx.meter.route = route.name;
  s.cx.meter.cluster = s.picked->name;
  // HTTP/1.0 allows a request without Host; the HTTP/1.1 request sent
  // upstream must have one: the cluster's authority (docs/reliability.md).
  if (!s.where.has_host) s.where.host_override = s.picked->authority;
  return step_result::next();
}

// Overload: past limits.max_in_flight requests being proxied by this worker,
// a 503 at once rather than a queue that grows (as Envoy's overload manager answers).
step_result limits_step(stream_state& s) {
  if (s.cx.w.in_flight() >= s.table.limits.max_in_flight) return step_result::stop(503, "overloaded\n");
  s.busy.emplace(s.cx.w);
  return step_result::next();
}

// The head for the upstream: HTTP/1.1 keep-alive, no hop-by-hop fields, the
// route's header operations, the forwarding fields. vane answers
// 100-continue itself, as nginx does.
step_result headers_step(stream_state& s) {
  forwarded_fields& forwarded = s.cx.scratch.forwarded;
  forwarded.collect(s.head, s.req.client_ip, s.req.scheme, s.table.listeners[s.cx.listener].trust_forwarded);
  s.how_upstream = request_out{s.where.target, s.where.host_override,     &s.route->request_headers,
                               &forwarded,     s.req.body_length_unknown, s.req.expects_continue};
  write_request_head(s.head, s.how_upstream, s.cx.scratch.upstream_head);
  if (s.cx.meter.log)
    s.cx.meter.request_id = value_sent(s.head, &s.route->request_headers, "x-request-id").value_or(std::string_view{});
  return step_result::next();
}

step_result fault_result(const fault_outcome& outcome) {
  step_result r;
  r.delay = outcome.delay;
  if (outcome.abort) r.status = *outcome.abort, r.body = "fault filter abort\n";
  return r;
}

// The route's fault: the client sees it; no upstream is asked.
step_result route_fault_step(stream_state& s) {
  s.first_attempt_start = clock::now();
  if (!s.route->fault) return step_result::next();
  return fault_result(decide_fault(*s.route->fault, s.policy.route_fault_counts[s.route->index]));
}

// The picked cluster's fault: as if the cluster had answered (counted as its
// upstream response by the runner, so a canary analysis sees it).
step_result cluster_fault_step(stream_state& s) {
  if (!s.picked->fault) return step_result::next();
  return fault_result(decide_fault(*s.picked->fault, s.policy.cluster_fault_counts[s.route->clusters[s.pick]]));
}

// Mirroring: decided now, the copy sent once the request body has been read.
step_result mirror_step(stream_state& s) {
  const auto& mirror = s.route->mirror;
  if (!mirror) return step_result::next();
  const upstream_pool& mpool = *s.policy.mirror_pools[s.route->clusters[mirror->target]];
  const mirror_verdict verdict =
      decide_mirror({mirror->per_10k, mirror->max_body}, s.policy.mirror_counts[s.route->index], s.req.content_length,
                    mpool.active_requests() >= mpool.max_connections());
  if (verdict == mirror_verdict::skip) return step_result::next();
  route_cluster_stats* stats = s.policy.route_stats[s.route->index][mirror->target];
  if (verdict == mirror_verdict::shed_body) {
    stats->mirror_shed_body.add();
  } else if (verdict == mirror_verdict::shed_overload) {
    stats->mirror_shed_overload.add();  // the mirror is slow: copies are shed, never queued
  } else {
    s.mirror_stats = stats;
    s.tee.cap = mirror->max_body;
  }
  return step_result::next();
}

using step = step_result (*)(stream_state&);
constexpr step steps[] = {check_step,   route_step,       split_step,         limits_step,
                          headers_step, route_fault_step, cluster_fault_step, mirror_step};

std::uint64_t micros(clock::duration d) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
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
    const auto wec = co_await write_all(conn.conn->stream, message);
    if (!wec) {
      message_head head;
      std::string store;
      std::vector<std::string_view> pieces;
      h1_parser<false> res(head, pieces);
      res.body_limit(boost::none);
      if (head_request) res.skip(true);
      conn.conn->stream.expires_after(timeout);
      const auto rec = co_await read_head(conn.conn->stream, conn.conn->buffer, res, store);
      if (rec == boost::beast::error::timeout) {
        code = 504;
      } else if (!rec) {
        code = head.status;
        h1_source<false> body(res, conn.conn->stream, conn.conn->buffer, io_timeout);
        auto status = relay_status::ok;
        for (bool end = false; !end;) {
          status = co_await body.next();
          if (status != relay_status::ok) break;
          end = body.done();
          body.consume();
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

// The copy is the request as sent upstream, to the shadow host, with its body
// whole (Content-Length); sent detached on `ex`, the worker's.
void start_mirror(stream_state& s, const worker_executor& ex) {
  const std::string shadow = shadow_host(s.where.host_override.empty() ? s.where.host : s.where.host_override);
  request_out how_mirror = s.how_upstream;
  how_mirror.host = shadow;
  how_mirror.chunked = false;
  how_mirror.drop_expect = true;
  if (s.req.has_body || s.head.find(boost::beast::http::field::content_length))
    how_mirror.content_length = s.tee.data.size();
  std::string message;
  write_request_head(s.head, how_mirror, message);
  message.append(s.tee.data);
  const std::size_t mirror_cluster = s.route->clusters[s.route->mirror->target];
  s.policy.mirror_pools[mirror_cluster]->begin_request();
  asio::co_spawn(ex,
                 send_mirror(s.cx.policy, mirror_cluster, s.mirror_stats, std::move(message), s.head.method == "HEAD",
                             s.route->timeout, s.table.limits.idle_timeout),
                 asio::detached);
}

// The reply to a request whose body turned out bad (bad_input or too_large).
task<bool> bad_body_reply(downstream& ds, relay_status status) {
  const bool too_large = status == relay_status::too_large;
  return ds.reply(too_large ? 413 : 400, too_large ? "request body too large\n" : "bad request body\n", true);
}

}  // namespace

task<bool> run_stream(const stream_context& cx, const stream_request& req, downstream& ds) {
  worker_policy& policy = *cx.policy;
  stream_state s{cx, req, *req.head, policy, *policy.table};
  const limits_config& limits = s.table.limits;
  for (const step run : steps) {
    const step_result r = run(s);
    if (r.delay) co_await sleep_for(*r.delay);
    if (!r.stops()) continue;
    if (run == cluster_fault_step) count_attempt(*s.rstats, r.status, s.first_attempt_start);
    // A body we will not read would be taken for the next request: close instead.
    co_return co_await ds.reply(r.status, r.body, r.close || req.has_body);
  }
  const compiled_route& route = *s.route;
  upstream_pool& pool = *s.pool;
  route_cluster_stats& rstats = *s.rstats;
  request_meter& meter = cx.meter;

  // The first piece of a request body is read (and checked) before anything
  // goes upstream: a broken chunk there is a 400 that no upstream ever sees
  // part of, as with nginx and HAProxy. An Expect: 100-continue client is
  // told to send it now.
  body_source& body = ds.request_body();
  if (req.has_body) {
    if (req.expects_continue && !co_await ds.send_continue()) co_return false;
    const auto status = co_await body.next();
    if (status == relay_status::read_failed) {
      meter.code = 499;
      co_return false;
    }
    if (status != relay_status::ok) co_return co_await bad_body_reply(ds, status);
  }

  // Retries (route.retries, filters/retry) within the cluster's retry budget
  // on this worker; besides them, one resend of a bodiless request whose
  // pooled connection turned out stale (not counted as an attempt).
  const retries_config* retries = route.retries ? &*route.retries : nullptr;
  retry_state rs;
  rs.on = retries ? &retries->on : nullptr;
  rs.retries_left = retries ? retries->attempts : 0;
  rs.idempotent = is_idempotent(s.head.method);
  rs.has_body = req.has_body;
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
  auto budget_allows = [&] {
    if (flight.retrying) pool.end_retry();
    flight.retrying = pool.try_begin_retry(retries->budget_per_10k, retries->budget_min);
    if (!flight.retrying) return false;
    --rs.retries_left;
    rstats.retries.add();
    return true;
  };

  const bool head_request = s.head.method == "HEAD";
  attempt_request ar;
  ar.head = cx.scratch.upstream_head;
  ar.chunked = s.how_upstream.chunked;
  ar.body = &body;
  ar.deadline = clock::now() + route.timeout;
  ar.try_timeout =
      retries && retries->per_try_timeout ? std::min(*retries->per_try_timeout, route.timeout) : route.timeout;
  ar.io_timeout = limits.idle_timeout;
  ar.head_request = head_request;
  ar.header_limit = static_cast<std::uint32_t>(std::max<std::uint64_t>(limits.max_request_headers, 65536));
  ar.bytes = &meter.bytes_received;
  ar.tee = s.mirror_stats ? &s.tee : nullptr;

  std::optional<h1_parser<false>> response;
  message_head& response_head = cx.scratch.response;
  attempt_result result;
  std::optional<failure_reply> failure;  // set when no response head arrived
  clock::time_point attempt_start = s.first_attempt_start;
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) attempt_start = clock::now();
    rs.body_touched = body.touched();
    ar.resendable = !req.has_body && !rs.resent_stale;
    result = co_await attempt_upstream(pool, ar, response, response_head, cx.scratch.response_pieces,
                                       cx.scratch.response_store);
    ar.fresh_only = false;
    if (result.endpoint < s.picked->endpoints.size()) meter.upstream = &s.picked->endpoints[result.endpoint];
    failure.reset();
    attempt_failure f;
    bool retryable = true;  // a failure the retry step may act on
    switch (result.end) {
      case attempt_end::response: {
        const unsigned code = response_head.status;
        if (code < 500 || code > 599 || decide_retry({retry_cause::status, code}, rs) != retry_verdict::retry ||
            !budget_allows())
          break;
        // Nothing of it went to the client: drop it (and its connection) and try again.
        count_attempt(rstats, code, attempt_start);
        pool.release(std::move(result.conn.conn), false);
        response.reset();
        continue;
      }
      case attempt_end::client_failed:
        if (result.body == relay_status::read_failed) {
          meter.code = 499;  // the client went away
          co_return false;
        }
        co_return co_await bad_body_reply(ds, result.body);
      case attempt_end::no_connection: {
        const bool connect_failure =
            result.acquire == acquire_error::connect_failed || result.acquire == acquire_error::connect_timeout;
        if (connect_failure || result.acquire == acquire_error::tls_failed)
          policy.cluster_counters[route.clusters[s.pick]]->connect_errors.add();
        failure = reply_for(result.acquire);
        f = {retry_cause::connect_failure, failure->status};
        retryable = connect_failure;  // overflow, no healthy endpoint, pending timeout: answered at once
        break;
      }
      case attempt_end::write_failed:
      case attempt_end::read_failed:
        failure = failure_reply{502, "upstream reset before response\n"};
        f = {retry_cause::reset, 502, result.stale};
        break;
      case attempt_end::timeout:
        failure = failure_reply{504, "upstream request timeout\n"};
        f = {retry_cause::timeout, 504};
        break;
    }
    if (!failure) break;  // a response head: relayed below
    const retry_verdict verdict = retryable ? decide_retry(f, rs) : retry_verdict::give_up;
    if (verdict == retry_verdict::resend_stale) {
      rs.resent_stale = ar.fresh_only = true;
      continue;
    }
    count_attempt(rstats, f.status, attempt_start);
    if (verdict == retry_verdict::retry && budget_allows()) continue;
    break;
  }

  if (s.mirror_stats) {
    if (req.has_body && !body.done()) {
      // The request body was not read to its end: nothing whole to copy.
    } else if (s.tee.over) {
      s.mirror_stats->mirror_shed_body.add();
    } else {
      const worker_executor ex = co_await asio::this_coro::executor;
      start_mirror(s, ex);
    }
  }

  if (failure) {
    // Unread body bytes: the connection cannot stay in sync.
    co_return co_await ds.reply(failure->status, failure->body, req.has_body && !body.done());
  }

  h1_parser<false>& res = *response;
  upstream_connection& up = *result.conn.conn;
  const unsigned code = response_head.status;
  if (code == 101 || code > 599) {
    // We never forward Upgrade, so a switch is a protocol error; so is a status out of RFC 9110's range.
    pool.release(std::move(result.conn.conn), false);
    count_attempt(rstats, 502, attempt_start);
    co_return co_await ds.reply(502, "unexpected protocol switch\n", true);
  }
  const bool upstream_keep_alive = res.keep_alive();
  response_shape shape;
  shape.ops = &route.response_headers;
  shape.cookies = s.cookies;
  shape.no_body = head_request || code == 204 || code == 304;
  shape.chunked = res.chunked();
  shape.close_delimited = !shape.no_body && !shape.chunked && !res.content_length() && !res.is_done();
  if (cx.w.draining()) ds.close_after();
  body_sink& sink = ds.respond(response_head, shape);

  // The head goes out with the first batch of the body (all of a small
  // body that came with the head: one write), then batch by batch.
  h1_source<false> response_body(res, up.stream, up.buffer, limits.idle_timeout);
  const auto status = co_await relay(response_body, sink);
  shrink_after_body(up.buffer);
  const bool upstream_reusable = upstream_keep_alive && status == relay_status::ok && res.is_done();
  pool.release(std::move(result.conn.conn), upstream_reusable);
  if (status != relay_status::ok && status != relay_status::write_failed && !sink.head_sent()) {
    // The upstream's body was bad (a broken chunk...) before anything went to the client: a 502 instead.
    count_attempt(rstats, 502, attempt_start);
    co_return co_await ds.reply(502, "upstream sent a bad response\n", true);
  }
  count_attempt(rstats, code, attempt_start);
  // The status was sent once the head went out, even if the body was cut short.
  meter.code = sink.head_sent() ? code : 499;
  co_return ds.end_response(status);
}

}  // namespace vane::proxy
