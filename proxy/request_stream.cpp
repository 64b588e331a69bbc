#include "proxy/request_stream.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/string.hpp>

#include "common/grpc.hpp"
#include "common/log.hpp"
#include "filters/decision/decision.hpp"
#include "filters/fallback/fallback.hpp"
#include "filters/fault/fault.hpp"
#include "filters/guard/guard.hpp"
#include "filters/mirror/mirror.hpp"
#include "filters/retry/retry.hpp"
#include "proxy/http1/head_out.hpp"
#include "proxy/http1/request_view.hpp"
#include "proxy/http2/client.hpp"
#include "proxy/request_checks.hpp"
#include "proxy/stream_state.hpp"
#include "proxy/upstream_attempt.hpp"
#include "proxy/worker.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

// Host, target and framing (proxy/request_checks): a refusal closes the connection.
step_result check_step(stream_state& s) {
  if (const auto refused = check_request(*s.head, s.table->limits, s.where, s.target_store))
    return step_result::stop(refused->status, refused->body, true);
  if (s.cx->meter.log) s.cx->meter.path = s.where.target;
  return step_result::next();
}

step_result route_step(stream_state& s) {
  s.route = s.table->match(s.cx->listener, s.where.host, path_of_target(s.where.target));
  return s.route ? step_result::next() : step_result::stop(404, "no route\n");
}

// The cluster of target s.pick (of the route's clusters) gets the request.
void use_target(stream_state& s) {
  const std::size_t cluster = s.route->clusters[s.pick];
  s.pool = s.policy->pools[cluster].get();
  s.rstats = s.policy->route_stats[s.route->index][s.pick];
  s.picked = &s.table->clusters[cluster];
  s.cx->meter.slot = s.rstats;
  s.cx->meter.cluster = s.picked->name;
  // HTTP/1.0 allows a request without Host; the HTTP/1.1 request sent
  // upstream must have one: the cluster's authority (docs/reliability.md).
  if (!s.where.has_host) s.where.host_override = s.picked->authority;
}

// When the route's guard watches the picked cluster: counts an attempt's
// outcome in this worker's guard window; the attempt after which the
// workers' windows together reach the rule trips the process's guard.
// note_attempt() counts the attempt (count_attempt) and its outcome; an
// answer relayed to the client has its outcome counted when its head
// arrives (a gRPC call's at its end, by its status), and the attempt when
// its body has gone.
void guard_record(stream_state& s, bool failed) {
  const auto& guard = s.route->guard;
  if (!guard || s.pick != guard->target) return;
  guard_totals seen;
  if (!guard->state->record(s.cx->w.id(), guard->rule, clock::now(), failed, seen)) return;
  s.rstats->guard_trips.add();
  log::warn(
      "route {}: guard tripped on cluster {}: {}.{:02}% of {} attempts failed in the last {}; it gets no new "
      "request until a traffic PUT resets the guard",
      s.route->name, s.picked->name, seen.error_per_10k() / 100, seen.error_per_10k() % 100, seen.requests,
      format_duration(guard->rule.window));
}

void guard_outcome(stream_state& s, unsigned code) { guard_record(s, guard_failure(code)); }

// A gRPC call's outcome: a status the guard counts as a failure (guard.grpc_failure_codes).
void guard_grpc_outcome(stream_state& s, unsigned grpc_status) {
  if (s.route->guard) guard_record(s, ((s.route->guard->grpc_failures >> grpc_status) & 1U) != 0);
}

void note_attempt(stream_state& s, unsigned code, clock::time_point start) {
  count_attempt(*s.rstats, code, start);
  guard_outcome(s, code);
  if (s.grpc) s.rstats->upstream_grpc.get().add(grpc_status_for_local_reply(code));  // (no grpc-status came)
}

// Rules, session affinity, sticky hashing and the weighted split (filters/decision).
step_result split_step(stream_state& s) {
  const compiled_route& route = *s.route;
  // A tripped guard: the decision without the guarded cluster.
  const route_decision& decision =
      route.guard && route.guard->state->tripped() ? route.guard->decision : route.decision;
  s.pick = decision.pick(head_request_view(*s.head, s.where.target, s.req->client_ip), s.policy->swrr[route.index],
                         s.cookies);
  s.cx->meter.route = route.name;
  use_target(s);
  if (s.grpc && s.picked->protocol != upstream_protocol::h2) {
    // gRPC needs HTTP/2 to the upstream (its trailers carry the status): the client gets UNAVAILABLE.
    const auto now = clock::now();
    static thread_local clock::time_point last_said{};
    if (now - last_said > std::chrono::seconds(1)) {
      last_said = now;
      log::warn("route {}: a gRPC request went to cluster {}, which speaks HTTP/1.1; set its protocol: h2", route.name,
                s.picked->name);
    }
    return step_result::stop(503, "gRPC needs an HTTP/2 cluster\n");
  }
  return step_result::next();
}

// Overload: past limits.max_in_flight requests being proxied by this worker,
// a 503 at once rather than a queue that grows (as Envoy's overload manager answers).
step_result limits_step(stream_state& s) {
  if (s.cx->w.in_flight() >= s.table->limits.max_in_flight) return step_result::stop(503, "overloaded\n");
  s.cx->w.begin_in_flight();
  s.counted_in_flight = true;
  return step_result::next();
}

// The head as the picked cluster takes it: HTTP/1.1 text in the worker's
// scratch, or, for HTTP/2, nothing yet: the attempt makes the stream's
// fields from the received head and how_upstream (the same decisions,
// proxy/http1/head_out), with no text written and read back.
void prepare_upstream_head(stream_state& s) {
  std::string& text = s.cx->scratch.upstream_head;
  if (s.picked->protocol == upstream_protocol::h2) {
    text.clear();
    s.attempt.message = s.head;
    s.attempt.how = &s.how_upstream;
  } else {
    write_request_head(*s.head, s.how_upstream, text);
    s.attempt.message = nullptr;
    s.attempt.how = nullptr;
  }
  s.attempt.head = text;
}

// The head for the upstream: HTTP/1.1 keep-alive, no hop-by-hop fields, the
// route's header operations, the forwarding fields. vane answers
// 100-continue itself, as nginx does.
step_result headers_step(stream_state& s) {
  forwarded_fields& forwarded = s.cx->scratch.forwarded;
  forwarded.collect(*s.head, s.req->client_ip, s.req->scheme, s.table->listeners[s.cx->listener].trust_forwarded);
  s.how_upstream = request_out{s.where.target, s.where.host_override,      &s.route->request_headers,
                               &forwarded,     s.req->body_length_unknown, s.req->expects_continue};
  // Equal lengths repeated or listed go upstream as one (RFC 9110 §8.6).
  if (!s.where.single_content_length) s.how_upstream.content_length = s.req->content_length;
  prepare_upstream_head(s);
  if (s.cx->meter.log)
    s.cx->meter.request_id =
        value_sent(*s.head, &s.route->request_headers, "x-request-id").value_or(std::string_view{});
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
  if (!s.route->fault) return step_result::next();
  return fault_result(decide_fault(*s.route->fault, s.policy->route_fault_counts[s.route->index]));
}

// The picked cluster's fault: as if the cluster had answered (counted as its
// upstream response by the runner, so a canary analysis sees it).
step_result cluster_fault_step(stream_state& s) {
  s.first_attempt_start = clock::now();
  s.cluster_fault_delay = {};
  if (!s.picked->fault) return step_result::next();
  step_result r =
      fault_result(decide_fault(*s.picked->fault, s.policy->cluster_fault_counts[s.route->clusters[s.pick]]));
  r.upstream_answer = true;
  if (r.delay) s.cluster_fault_delay = *r.delay;
  return r;
}

// Mirroring: decided now, the copy sent once the request body has been read.
step_result mirror_step(stream_state& s) {
  const auto& mirror = s.route->mirror;
  if (!mirror) return step_result::next();
  const upstream_pool& mpool = *s.policy->mirror_pools[s.route->clusters[mirror->target]];
  const mirror_verdict verdict =
      decide_mirror({mirror->per_10k, mirror->max_body}, s.policy->mirror_counts[s.route->index], s.req->content_length,
                    mpool.active_requests() >= mpool.max_connections());
  if (verdict == mirror_verdict::skip) return step_result::next();
  route_cluster_stats* stats = s.policy->route_stats[s.route->index][mirror->target];
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
static_assert(std::size(steps) == step_count);

// The same copy to a mirror cluster that speaks HTTP/2: a stream on one of
// the mirror pool's connections; the answer's body is read and dropped.
task<unsigned> mirror_over_h2(upstream_pool& pool, const std::string& message, std::size_t head_size, bool head_request,
                              duration timeout, duration io_timeout) {
  buffered_body body;
  body.reset(std::string_view(message).substr(head_size));
  attempt_request a;
  a.head = std::string_view(message).substr(0, head_size);
  a.body = &body;
  a.has_body = message.size() > head_size;
  a.deadline = clock::now() + timeout;
  a.try_timeout = timeout;
  a.io_timeout = io_timeout;
  a.head_request = head_request;
  std::shared_ptr<h2_call> call;
  message_head head;
  const attempt_result r = co_await attempt_h2(pool, a, call, head);
  if (r.end != attempt_end::response) co_return r.end == attempt_end::timeout ? 504U : reply_for(r.acquire).status;
  body_source& answer = h2_call_body(*call);
  co_await drain(answer);
  co_await h2_call_finish(*call);
  co_return head.status;
}

// Sends one mirror copy (`message`: head and body) and reads its answer to
// the end, discarding it; only the status and the duration are kept
// (vane_mirror_* of the route and the mirror cluster). Runs detached on the
// worker: nothing waits for it. The caller has counted it in the pool's
// requests; `policy` pins the pool.
task<void> send_mirror(std::shared_ptr<worker_policy> policy, std::size_t cluster, route_cluster_stats* stats,
                       std::string message, std::size_t head_size, bool head_request, duration timeout,
                       duration io_timeout) {
  upstream_pool& pool = *policy->mirror_pools[cluster];
  struct done {
    upstream_pool& pool;
    ~done() { pool.end_request(); }
  } guard{pool};
  const auto start = clock::now();
  if (pool.cluster().protocol == upstream_protocol::h2) {
    const unsigned answered = co_await mirror_over_h2(pool, message, head_size, head_request, timeout, io_timeout);
    count_mirror(*stats, answered, start);
    co_return;
  }
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
      std::optional<h1_parser<false>> res;
      bool interim = false;  // (past interim 1xx answers, as an attempt reads)
      const auto rec = co_await read_final_head(conn.conn->stream, conn.conn->buffer, res, head, pieces, store, timeout,
                                                std::nullopt, head_request, interim);
      if (rec == boost::beast::error::timeout) {
        code = 504;
      } else if (!rec) {
        code = head.status;
        h1_source<false> body(*res, conn.conn->stream, conn.conn->buffer, io_timeout);
        const relay_status status = co_await drain(body);
        shrink_after_body(conn.conn->buffer);
        reusable = status == relay_status::ok && res->is_done() && res->keep_alive() && code >= 200;
      }
    }
    pool.release(std::move(conn.conn), reusable);
  }
  count_mirror(*stats, code, start);
}

// The copy is the request as sent upstream, to the shadow host, with its body
// whole (Content-Length); sent detached on `ex`, the worker's.
void start_mirror(stream_state& s, const worker_executor& ex) {
  const std::size_t mirror_cluster = s.route->clusters[s.route->mirror->target];
  upstream_pool& mpool = *s.policy->mirror_pools[mirror_cluster];
  if (mpool.active_requests() >= mpool.max_connections()) {
    // Checked again now: copies decided while the main request waited may have filled the mirror since.
    s.mirror_stats->mirror_shed_overload.add();  // shed, never queued
    return;
  }
  const std::string shadow = shadow_host(s.where.host_override.empty() ? s.where.host : s.where.host_override);
  request_out how_mirror = s.how_upstream;
  how_mirror.host = shadow;
  how_mirror.chunked = false;
  how_mirror.drop_expect = true;
  if (s.req->has_body || s.head->find(boost::beast::http::field::content_length))
    how_mirror.content_length = s.tee.data.size();
  std::string message;
  write_request_head(*s.head, how_mirror, message);
  const std::size_t head_size = message.size();
  message.append(s.tee.data);
  mpool.begin_request();
  asio::co_spawn(ex,
                 send_mirror(s.cx->policy, mirror_cluster, s.mirror_stats, std::move(message), head_size,
                             s.attempt.head_request, s.route->timeout, s.table->limits.idle_timeout),
                 asio::detached);
}

// The reply to a request whose body turned out bad (bad_input or too_large).
task<bool> bad_body_reply(downstream& ds, relay_status status) {
  const bool too_large = status == relay_status::too_large;
  return ds.reply(too_large ? 413 : 400, too_large ? "request body too large\n" : "bad request body\n", true);
}

// Within the cluster's retry budget on this worker: counts the retry.
bool budget_allows(stream_state& s) {
  if (s.retrying) s.pool->end_retry();
  s.retrying = s.pool->try_begin_retry(s.route->retries->budget_per_10k, s.route->retries->budget_min);
  if (!s.retrying) return false;
  --s.retry.retries_left;
  s.rstats->retries.add();
  return true;
}

// After an attempt that brought no response the client may see: what the
// client would get, and whether to try again (filters/retry). True: try again.
bool after_failed_attempt(stream_state& s, clock::time_point attempt_start) {
  const attempt_result& result = s.result;
  attempt_failure f;
  bool retryable = true;  // a failure the retry step may act on
  switch (result.end) {
    case attempt_end::no_connection: {  // (each failed connect was counted by the pool)
      const bool connect_failure =
          result.acquire == acquire_error::connect_failed || result.acquire == acquire_error::connect_timeout;
      s.failure = reply_for(result.acquire);
      f = {retry_cause::connect_failure, s.failure->status};
      retryable = connect_failure;  // overflow, no healthy endpoint, pending timeout: answered at once
      break;
    }
    case attempt_end::timeout:
      s.failure = failure_reply{504, "upstream request timeout\n"};
      f = {retry_cause::timeout, 504};
      break;
    default:  // write_failed, read_failed
      s.failure = failure_reply{502, "upstream reset before response\n"};
      f = {retry_cause::reset, 502, result.stale, result.refused, result.end == attempt_end::read_failed};
      break;
  }
  s.last_failure = f;
  if (!retryable) s.last_failure.cause = retry_cause::connect_failure;  // nothing was sent: a fallback may take it
  const retry_verdict verdict = retryable ? decide_retry(f, s.retry) : retry_verdict::give_up;
  if (verdict == retry_verdict::resend_stale) {
    if (f.refused) {
      ++s.retry.refused_resends;  // any connection that takes streams will do (not one that said GOAWAY)
    } else {
      s.retry.resent_stale = s.attempt.fresh_only = true;
    }
    return true;
  }
  note_attempt(s, f.status, attempt_start);
  return verdict == retry_verdict::retry && budget_allows(s);
}

// A gRPC call's answer that is not relayed (tried again, or fallen back from): counted as the client
// would have got it.
void note_grpc_answer(stream_state& s, unsigned code, unsigned grpc_status, clock::time_point start) {
  count_attempt(*s.rstats, code, start);
  s.rstats->upstream_grpc.get().add(grpc_status);
  s.rstats->upstream_grpc_answered.get().add(grpc_status);
  guard_grpc_outcome(s, grpc_status);
}

// After a failed attempt on the cluster the route falls back from: the
// request goes once to the one it falls back to (filters/fallback), within
// that cluster's budget (shared with its retries). The failed attempt was
// counted as the first cluster's (a 5xx answer, `answer_start` set: here,
// before the request leaves it). True: the next attempt goes there.
// `grpc_status`: the failure is a gRPC call that ended at once with it (Trailers-Only, HTTP 200).
bool fall_back(stream_state& s, const attempt_failure& failure, body_source& body,
               std::optional<clock::time_point> answer_start = std::nullopt,
               std::optional<unsigned> grpc_status = std::nullopt) {
  const auto& fallback = s.route->fallback;
  if (!fallback || s.pick != fallback->from || s.fell_back) return false;
  // Kept: received whole and written whole (the last batch consumed), or the copy a gRPC retry sent,
  // within the fallback's own cap.
  const bool kept = s.req->has_body &&
                    (s.attempt.body == &s.fallback_body ||
                     (body.done() && !body.ready() && s.attempt.tee == &s.tee && !s.tee.over)) &&
                    s.tee.data.size() <= fallback->config.max_body;
  const fallback_request request{s.retry.idempotent, s.req->has_body, kept};
  if (!(grpc_status ? decide_grpc_fallback(fallback->config.on, *grpc_status, request)
                    : decide_fallback(fallback->config.on, failure, request)))
    return false;
  // gRPC needs HTTP/2 to the upstream (its status is in trailers): not to an HTTP/1.1 cluster.
  if (s.grpc && s.table->clusters[s.route->clusters[fallback->to]].protocol != upstream_protocol::h2) return false;
  upstream_pool& to = *s.policy->pools[s.route->clusters[fallback->to]];
  if (!to.try_begin_retry(fallback->config.budget_per_10k, fallback->config.budget_min)) return false;
  if (answer_start && grpc_status)
    note_grpc_answer(s, failure.status, *grpc_status, *answer_start);
  else if (answer_start)
    note_attempt(s, failure.status, *answer_start);
  if (s.retrying) s.pool->end_retry();
  s.pool->end_request();
  s.pick = fallback->to;
  use_target(s);
  s.pool->begin_request();
  s.retrying = s.fell_back = true;
  s.retry.retries_left = 0;
  s.attempt.deadline = clock::now() + s.route->timeout;  // the failed attempt may have used all of the first one
  s.policy->fallback_counts[s.route->index]->add();
  if (!s.where.has_host) s.how_upstream.host = s.where.host_override;  // the Host sent is the new cluster's
  prepare_upstream_head(s);                                            // (which may speak the other protocol)
  if (body.touched()) {                                                // sent once already: the copy kept goes
    s.fallback_body.reset(s.tee.data);
    s.attempt.body = &s.fallback_body;
    s.attempt.tee = nullptr;
    s.attempt.bytes = nullptr;  // (the client's bytes were counted when they first went up)
  }
  return true;
}

// A gRPC request whose call ended at once with a status the route retries
// (retries.on: unavailable, internal, ...; Envoy retries those only in a
// Trailers-Only answer too): tried again, whatever its method (gRPC's own
// retry policy), when its body was kept whole and the budget allows.
constexpr std::uint64_t grpc_retry_max_body = std::uint64_t{1024} * 1024;

bool grpc_retry_wanted(stream_state& s, const message_head& head, body_source& body, clock::time_point start) {
  const auto& retries = s.route->retries;
  if (!s.h2call || !retries || retries->on.grpc == 0 || s.retry.retries_left == 0 || !h2_call_ended(*s.h2call))
    return false;
  const auto value = head.find("grpc-status");
  const auto status = value ? parse_grpc_status(*value) : std::nullopt;
  if (!status || ((retries->on.grpc >> *status) & 1U) == 0) return false;
  const bool kept = !s.req->has_body || s.attempt.body == &s.fallback_body ||
                    (body.done() && !body.ready() && s.attempt.tee == &s.tee && !s.tee.over);
  if (!kept) return false;
  if (!budget_allows(s)) return false;
  note_grpc_answer(s, head.status, *status, start);
  if (s.req->has_body && s.attempt.body != &s.fallback_body) {  // sent once already: the copy kept goes
    s.fallback_body.reset(s.tee.data);
    s.attempt.body = &s.fallback_body;
    s.attempt.tee = nullptr;
    s.attempt.bytes = nullptr;  // (the client's bytes were counted when they first went up)
  } else if (s.attempt.body == &s.fallback_body) {
    s.fallback_body.reset(s.tee.data);
  }
  return true;
}

// A gRPC call of the cluster the route falls back from that ended at once (Trailers-Only, HTTP 200) with a
// status fallback.on names: sent once to the cluster it falls back to, its body kept whole.
bool grpc_fallback_wanted(stream_state& s, const message_head& head, body_source& body, clock::time_point start) {
  const auto& fallback = s.route->fallback;
  if (!s.h2call || !fallback || fallback->config.on.grpc == 0 || s.pick != fallback->from || s.fell_back ||
      head.status != 200 || !h2_call_ended(*s.h2call))
    return false;
  const auto value = head.find("grpc-status");
  const auto status = value ? parse_grpc_status(*value) : std::nullopt;
  if (!status || *status == 0) return false;
  return fall_back(s, attempt_failure{retry_cause::status, head.status}, body, start, *status);
}

// The attempt's settings, once the steps have run.
void plan_attempts(stream_state& s, body_source& body) {
  const compiled_route& route = *s.route;
  const limits_config& limits = s.table->limits;
  const retries_config* retries = route.retries ? &*route.retries : nullptr;
  s.retry.on = retries ? &retries->on : nullptr;
  s.retry.retries_left = retries ? retries->attempts : 0;
  s.retry.idempotent = is_idempotent(s.head->method);
  s.retry.has_body = s.req->has_body;
  // (a.deadline was set before the body's first batch, a.head by prepare_upstream_head)
  attempt_request& a = s.attempt;
  a.chunked = s.how_upstream.chunked;
  a.body = &body;
  a.try_timeout =
      retries && retries->per_try_timeout ? std::min(*retries->per_try_timeout, route.timeout) : route.timeout;
  a.io_timeout = limits.idle_timeout;
  a.head_request = s.head->method == "HEAD";
  a.header_limit = static_cast<std::uint32_t>(std::max<std::uint64_t>(limits.max_request_headers, 65536));
  a.bytes = &s.cx->meter.bytes_received;
  a.has_body = s.req->has_body;
  a.grpc = s.grpc;
  if (s.grpc) {  // the client's deadline bounds each attempt (as Envoy's max_grpc_timeout unset: no cap but the
                 // route's)
    if (const auto value = s.head->find("grpc-timeout"))
      if (const auto deadline = parse_grpc_timeout(*value))
        a.try_timeout = std::min(a.try_timeout, std::chrono::ceil<duration>(*deadline));
  }
  // A body that may fall back is kept (up to fallback.max_body) to be sent again; so is a gRPC
  // request's when the route retries gRPC statuses (up to grpc_retry_max_body).
  const bool keep_body = route.fallback && s.pick == route.fallback->from && s.req->has_body;
  if (keep_body) s.tee.cap = std::max(s.tee.cap, route.fallback->config.max_body);
  const bool grpc_retries = s.grpc && retries && retries->on.grpc && s.req->has_body;
  if (grpc_retries) s.tee.cap = std::max(s.tee.cap, grpc_retry_max_body);
  a.tee = s.mirror_stats || keep_body || grpc_retries ? &s.tee : nullptr;
  s.pool->begin_request();
  s.counted_in_pool = true;
}

// The response of an HTTP/2 upstream to the client, then the call's end.
task<bool> relay_h2_response(stream_state& s, downstream& ds, clock::time_point attempt_start) {
  h2_call& call = *s.h2call;
  const message_head& head = s.cx->scratch.response;
  const unsigned code = head.status;
  response_shape shape;
  shape.ops = &s.route->response_headers;
  shape.cookies = s.cookies;
  shape.no_body = s.attempt.head_request || code == 204 || code == 304 || h2_call_ended(call);
  // No Content-Length: an HTTP/1.1 client gets the body chunked (an HTTP/2 one in frames, as it came).
  shape.chunked = !shape.no_body && !head.find(boost::beast::http::field::content_length);
  if (s.cx->w.draining()) ds.close_after();
  body_sink& sink = ds.respond(head, shape);
  const relay_progress now = relay_now(h2_call_body(call), sink);
  relay_status status = now.status.value_or(relay_status::ok);
  if (!now.status) status = co_await relay(h2_call_body(call), sink, now);
  if (s.grpc) {
    // The call's status: in its trailers, or in its only HEADERS (Trailers-Only); none is UNKNOWN.
    std::optional<unsigned> grpc;
    for (const auto& t : h2_call_body(call).trailers())
      if (t.name == "grpc-status") grpc = parse_grpc_status(t.value);
    if (!grpc)
      if (const auto v = head.find("grpc-status")) grpc = parse_grpc_status(*v);
    const bool said = grpc.has_value();
    if (!grpc)
      grpc = status == relay_status::ok ? grpc_status_for_http(code) : static_cast<unsigned>(grpc_code::internal);
    if (s.guard_at_end) {
      s.guard_at_end = false;
      // A client that went away before the status came says nothing of the upstream: not counted.
      if (said || status != relay_status::write_failed) guard_grpc_outcome(s, *grpc);
    }
    s.rstats->upstream_grpc.get().add(*grpc);
    if (code < 500) s.rstats->upstream_grpc_answered.get().add(*grpc);
    s.cx->meter.grpc_status = static_cast<int>(status == relay_status::write_failed ? 1U : *grpc);  // (1: CANCELLED)
  }
  if (!h2_call_finish_now(call)) co_await h2_call_finish(call);
  if (status != relay_status::ok && status != relay_status::write_failed && !sink.head_sent()) {
    count_attempt(*s.rstats, 502, attempt_start);
    co_return co_await ds.reply(502, "upstream sent a bad response\n", true);
  }
  count_attempt(*s.rstats, code, attempt_start);  // (its guard outcome was counted at the head)
  s.cx->meter.code = sink.head_sent() ? code : 499;
  co_return ds.end_response(status);
}

}  // namespace

step_result run_steps(stream_state& s, std::size_t& next) {
  while (next < step_count) {
    step_result r = steps[next++](s);
    if (r.stops() || r.delay) return r;
  }
  return step_result::next();
}

void stream_state::begin(const stream_context& c, const stream_request& r, worker_policy& p, const route_table& t) {
  cx = &c;
  req = &r;
  head = r.head;
  policy = &p;
  table = &t;
  where = {};
  route = nullptr;
  pick = 0;
  picked = nullptr;
  pool = nullptr;
  rstats = nullptr;
  cookies = {};
  how_upstream = {};
  mirror_stats = nullptr;
  tee.cap = 0;
  retry = {};
  fell_back = false;
  guard_at_end = false;
  attempt = {};
  failure.reset();
  const auto content_type = r.head->find(boost::beast::http::field::content_type);
  grpc = content_type && is_grpc_content_type(*content_type);
}

void stream_state::end() {
  if (!tee.data.empty() || tee.over) tee = {};  // a mirror's copy is not kept in an idle scratch
  response_body.reset();
  upstream_sink.reset();
  response.reset();
  if (result.conn.conn) pool->release(std::move(result.conn.conn), false);
  h2call.reset();  // (finished by run_stream: nothing of it runs)
  result = {};
  if (counted_in_pool) {
    if (retrying) pool->end_retry();
    pool->end_request();
    counted_in_pool = retrying = false;
  }
  if (counted_in_flight) {
    cx->w.end_in_flight();
    counted_in_flight = false;
  }
}

task<bool> run_stream(const stream_context& cx, const stream_request& req, downstream& ds) {
  stream_state& s = cx.scratch.stream;
  s.begin(cx, req, *cx.policy, *cx.policy->table);
  struct ender {
    stream_state& s;
    ~ender() { s.end(); }
  } end_when_done{s};
  for (std::size_t next = 0; next < step_count;) {
    const step_result r = run_steps(s, next);
    if (r.delay) co_await sleep_for(*r.delay);
    if (!r.stops()) continue;
    if (r.upstream_answer) note_attempt(s, r.status, s.first_attempt_start);
    // A body we will not read would be taken for the next request: close instead.
    co_return co_await ds.reply(r.status, r.body, r.close || req.has_body);
  }

  // The first piece of a request body is read (and checked) before anything
  // goes upstream: a broken chunk there is a 400 that no upstream ever sees
  // part of, as with nginx and HAProxy. An Expect: 100-continue client is
  // told to send it now.
  s.attempt.deadline = clock::now() + s.route->timeout;  // for getting a connection, the body's wait included
  body_source& body = ds.request_body();
  if (req.has_body) {
    if (req.expects_continue && !co_await ds.send_continue()) co_return false;
    std::optional<relay_status> first = body.poll();
    if (!first) first = co_await body.next();
    if (*first == relay_status::read_failed) {
      cx.meter.code = 499;
      co_return false;
    }
    if (*first != relay_status::ok) co_return co_await bad_body_reply(ds, *first);
  }

  // The attempts: retries (route.retries, filters/retry) within the
  // cluster's retry budget; besides them, one resend of a bodiless request
  // whose pooled connection turned out stale (not counted as an attempt).
  plan_attempts(s, body);
  message_head& response_head = cx.scratch.response;
  // The first attempt counts from now (not the body's first batch, not a 100-continue), and a cluster fault's delay.
  clock::time_point attempt_start = clock::now() - s.cluster_fault_delay;
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) {
      attempt_start = clock::now();
      // Each try has the route's timeout to get a connection (the last may have spent the first's).
      s.attempt.deadline = attempt_start + s.route->timeout;
    }
    s.failure.reset();
    if (s.picked->protocol == upstream_protocol::h2)
      s.result = co_await attempt_h2(*s.pool, s.attempt, s.h2call, response_head);
    else
      s.result = co_await attempt_upstream(*s.pool, s.attempt, s.upstream_sink, s.response, response_head,
                                           cx.scratch.response_pieces, cx.scratch.response_store);
    s.attempt.fresh_only = false;
    s.retry.body_touched = body.touched();  // what this attempt consumed of the body decides a retry
    if (s.h2call && h2_call_pumping(*s.h2call)) s.retry.body_touched = true;  // still going up: not resendable
    if (s.result.endpoint < s.picked->endpoints.size()) cx.meter.upstream = &s.picked->endpoints[s.result.endpoint];
    if (s.result.end == attempt_end::client_failed) {
      if (s.result.body == relay_status::read_failed) {
        cx.meter.code = 499;  // the client went away
        co_return false;
      }
      co_return co_await bad_body_reply(ds, s.result.body);
    }
    if (s.result.end == attempt_end::response) {
      const unsigned code = response_head.status;
      if (code < 500 || code > 599) {
        // Its outcome counts now, before the body: the next request already sees a trip. (A switch or a
        // status out of range is a 502, counted below.)
        if (s.grpc && (grpc_retry_wanted(s, response_head, body, attempt_start) ||
                       grpc_fallback_wanted(s, response_head, body, attempt_start))) {
          co_await h2_call_finish(*s.h2call);
          s.h2call.reset();
          continue;
        }
        // A gRPC call answered over HTTP/2 is counted at its end, by the status in its trailers (or in its
        // only HEADERS): a failing call answers 200 too.
        if (s.grpc && s.h2call)
          s.guard_at_end = true;
        else if (code != 101 && code <= 599)
          guard_outcome(s, code);
        break;  // a response head: relayed below
      }
      const attempt_failure answered{retry_cause::status, code};
      upstream_pool& answered_by = *s.pool;  // (a fallback moves s.pool to its cluster)
      const bool again = decide_retry(answered, s.retry) == retry_verdict::retry && budget_allows(s);
      if (!again && !fall_back(s, answered, body, attempt_start)) {
        guard_outcome(s, code);
        break;
      }
      // Nothing of it went to the client: drop it (and its connection) and try again.
      if (again) note_attempt(s, code, attempt_start);
      if (s.h2call) {
        co_await h2_call_finish(*s.h2call);
        s.h2call.reset();
      } else {
        answered_by.release(std::move(s.result.conn.conn), false);
        s.response.reset();
      }
      continue;
    }
    if (!after_failed_attempt(s, attempt_start) && !fall_back(s, s.last_failure, body)) break;
  }

  if (s.mirror_stats) {
    if (req.has_body && !body.done()) {
      // The request body was not read to its end: nothing whole to copy.
    } else if (s.tee.over ||
               s.tee.data.size() > s.route->mirror->max_body) {  // (kept for a fallback up to its own cap)
      s.mirror_stats->mirror_shed_body.add();
    } else {
      const worker_executor ex = co_await asio::this_coro::executor;
      start_mirror(s, ex);
    }
  }

  if (s.failure) {
    // Unread body bytes: the connection cannot stay in sync.
    co_return co_await ds.reply(s.failure->status, s.failure->body, req.has_body && (!body.done() || body.ready()));
  }

  // An upstream may answer before the request body ends and stop reading it (HTTP/2 resets the
  // stream; HTTP/1.1 closes): what the client still sends of the body is then unread, and would be
  // read as its next request. The connection closes after the answer instead (as Envoy's; RFC 9112 §9.6).
  if (req.has_body && (!body.done() || body.ready())) ds.close_after();
  if (s.h2call) co_return co_await relay_h2_response(s, ds, attempt_start);
  h1_parser<false>& res = *s.response;
  const unsigned code = response_head.status;
  if (code == 101 || code > 599) {
    // We never forward Upgrade, so a switch is a protocol error; so is a status out of RFC 9110's range
    // (below 100, and bad framing, the attempt refuses as a malformed head).
    s.pool->release(std::move(s.result.conn.conn), false);
    note_attempt(s, 502, attempt_start);
    co_return co_await ds.reply(502, "unexpected protocol switch\n", true);
  }
  const bool upstream_keep_alive = res.keep_alive();  // as the head said (a trailer does not change it)
  response_shape shape;
  shape.ops = &s.route->response_headers;
  shape.cookies = s.cookies;
  shape.no_body = s.attempt.head_request || code == 204 || code == 304;
  shape.chunked = res.chunked();
  shape.close_delimited = !shape.no_body && !shape.chunked && !res.content_length() && !res.is_done();
  if (cx.w.draining()) ds.close_after();
  body_sink& sink = ds.respond(response_head, shape);

  // The head goes out with the first batch of the body (all of a small
  // body that came with the head: one write), then batch by batch.
  upstream_connection& up = *s.result.conn.conn;
  auto& response_body = s.response_body.emplace(res, up.stream, up.buffer, s.attempt.io_timeout);
  const relay_progress now = relay_now(response_body, sink);
  relay_status status = now.status.value_or(relay_status::ok);
  if (!now.status) status = co_await relay(response_body, sink, now);
  shrink_after_body(up.buffer);
  const bool reusable = upstream_keep_alive && status == relay_status::ok && res.is_done() && !s.result.cut_short;
  s.pool->release(std::move(s.result.conn.conn), reusable);
  if (status != relay_status::ok && status != relay_status::write_failed && !sink.head_sent()) {
    // The upstream's body was bad (a broken chunk...) before anything went to the client: a 502 instead.
    count_attempt(*s.rstats, 502, attempt_start);  // (the guard counted its head)
    co_return co_await ds.reply(502, "upstream sent a bad response\n", true);
  }
  count_attempt(*s.rstats, code, attempt_start);  // (its guard outcome was counted at the head)
  // The status was sent once the head went out, even if the body was cut short.
  cx.meter.code = sink.head_sent() ? code : 499;
  co_return ds.end_response(status);
}

}  // namespace vane::proxy
