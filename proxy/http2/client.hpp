#pragma once
// HTTP/2 to a cluster's endpoints (`protocol: h2`; RFC 9113) on nghttp2:
// ALPN "h2" over TLS, prior knowledge over plain TCP.
//
// Each worker keeps, per cluster, HTTP/2 connections that carry many
// requests at once: a request takes a stream on a connection to the
// endpoint the round-robin picked, if one has room under what the peer
// allows (SETTINGS_MAX_CONCURRENT_STREAMS; 100 until its SETTINGS come),
// else a new connection opens through the upstream pool (which counts it
// against max_connections). Requests that arrive while it connects wait for
// it rather than opening one each. A GOAWAY lets the streams the peer took
// finish and sends no new one there; a stream the peer did not process
// (above GOAWAY's last stream, or refused) ends as a stale connection's
// request does: sent again, once, on another connection when it had no
// body. Flow control is tied to the relay, as downstream: a response
// window opens as the client takes the body.
#include <cstdint>
#include <memory>
#include <vector>

#include "proxy/upstream_attempt.hpp"

namespace vane::proxy {

class h2_client_session;
class h2_call;  // one request and its response on an upstream HTTP/2 connection

class h2_upstream {
 public:
  explicit h2_upstream(upstream_pool& pool);
  ~h2_upstream();  // every connection closes
  h2_upstream(const h2_upstream&) = delete;
  h2_upstream& operator=(const h2_upstream&) = delete;

  // A connection to `endpoint` with room for one more stream (reserved for
  // the caller), or a new one, connecting. `fresh`: a new one in any case.
  std::shared_ptr<h2_client_session> reserve(std::size_t endpoint, bool fresh,
                                             std::chrono::steady_clock::time_point deadline);
  void forget(const h2_client_session* s);
  upstream_pool& pool() { return pool_; }
  std::size_t connections() const { return sessions_.size(); }

 private:
  upstream_pool& pool_;
  std::vector<std::shared_ptr<h2_client_session>> sessions_;  // those that take new streams
  std::vector<std::weak_ptr<h2_client_session>> made_;        // all that may still run
};

// An attempt on an h2 cluster, as attempt_upstream() for HTTP/1.1: the
// request (the HTTP/1.1 head built for the upstream, turned into HTTP/2
// fields) and its body go out on a stream; on `response` the head is in
// `head` (views into the call) and the call holds the response. When the
// request body can be cancelled (an HTTP/2 client's), it is relayed beside
// the response, so that streaming RPCs flow both ways; else whole first.
task<attempt_result> attempt_h2(upstream_pool& pool, const attempt_request& request, std::shared_ptr<h2_call>& call,
                                message_head& head);

// The response body (and its trailers) of a call that got its head.
body_source& h2_call_body(h2_call& call);
// The response ended with its head's own HEADERS frame (Trailers-Only, or no body and no trailers).
bool h2_call_ended(const h2_call& call);
// The request body is still being relayed (it cannot be sent again).
bool h2_call_pumping(const h2_call& call);
// Ends the call: a stream not finished both ways is reset, and a request
// body still being relayed stops (the client's source is cancelled); returns
// once nothing of the call uses the request's state any more.
task<void> h2_call_finish(h2_call& call);
// The same when the request body's relay has ended (most calls: no coroutine
// to start); false, doing nothing, while it runs.
bool h2_call_finish_now(h2_call& call);

}  // namespace vane::proxy
