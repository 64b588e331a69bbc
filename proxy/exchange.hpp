#pragma once
// What passes between a codec and a request's stream, with no protocol in it.
//
// A connection loop (proxy/connection.cpp for HTTP/1.1; an HTTP/2 session
// for each of its streams) parses a request head into a message_head of
// views, wraps its body as a body_source, and hands both to run_stream()
// (proxy/request_stream.hpp) with a `downstream`: the few things a stream
// asks of the client's side — the body, a local reply, a response head and a
// sink for its body. The stream runs the route's steps and the upstream
// attempts, and never sees which protocol the client speaks.
//
// Bodies move as batches of pieces: views into the read buffer of whoever
// received them, written to the other side and only then consumed, so a
// byte is copied once (by the kernel) and a batch not yet consumed can be
// sent again (a retry).
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/units.hpp"
#include "proxy/executor.hpp"
#include "proxy/http1/message.hpp"

namespace vane::proxy {

struct header_ops;  // proxy/config.hpp

// A field of a trailer section (HTTP/2's trailing HEADERS: gRPC's status).
struct trailer_field {
  std::string_view name, value;
};

// read_failed: the sender went away or stalled; bad_input: what it sent is
// not a valid body (a broken chunk...); too_large: past the body limit;
// write_failed: the receiver went away or stalled.
enum class relay_status { ok, read_failed, bad_input, too_large, write_failed };

// A body being received. next() makes a batch ready: at least one piece, or
// the end (done()). The ready pieces stay valid, and are offered again, until
// consume(); body bytes after the end (trailers) are the codec's.
class body_source {
 public:
  virtual ~body_source() = default;
  bool ready() const noexcept { return ready_; }
  // Some of the body was consumed: it cannot be sent whole again.
  bool touched() const noexcept { return touched_; }
  // Makes a batch ready from what was received already, with no wait:
  // nothing when it must wait (then next()). Precondition: !ready().
  virtual std::optional<relay_status> poll() { return std::nullopt; }
  // Precondition: !ready().
  virtual task<relay_status> next() = 0;
  virtual std::span<const std::string_view> pieces() const noexcept = 0;
  // No body byte follows the ready pieces.
  virtual bool done() const noexcept = 0;
  // The ready batch was written: its bytes may go.
  virtual void consume() = 0;
  // Fields that came after the body (HTTP/2 trailers), valid once done() and
  // until the source goes; none from HTTP/1.1 (its trailers are dropped).
  virtual std::span<const trailer_field> trailers() const noexcept { return {}; }
  // Ends a next() that waits, with read_failed, so that a stream whose
  // response is over stops relaying a request body that still flows (an
  // HTTP/2 stream's). False when this source cannot (then a relay of it
  // must not outlive the response: the body is sent before the answer is
  // awaited).
  virtual bool cancel() { return false; }
  virtual bool can_cancel() const noexcept { return false; }

 protected:
  bool ready_ = false, touched_ = false;
};

// A request body kept whole in memory (the copy a fallback sends again):
// one batch, then the end.
class buffered_body final : public body_source {
 public:
  void reset(std::string_view data) noexcept {
    data_ = data;
    ready_ = touched_ = false;
  }
  std::optional<relay_status> poll() override {
    ready_ = true;
    return relay_status::ok;
  }
  task<relay_status> next() override;
  std::span<const std::string_view> pieces() const noexcept override { return {&data_, data_.empty() ? 0U : 1U}; }
  bool done() const noexcept override { return true; }
  void consume() override {
    ready_ = false;
    touched_ = true;
  }

 private:
  std::string_view data_;
};

// Where a body goes. put() writes what the socket takes at once (with any
// head still pending, in one gather write) and says whether some is left;
// flush() waits until the rest is written. `last`: the body ends with these
// pieces (a chunked or HTTP/2 framing closes it).
class body_sink {
 public:
  enum class put_result { written, pending, failed };
  virtual ~body_sink() = default;
  virtual put_result put(std::span<const std::string_view> pieces, bool last) = 0;
  virtual task<bool> flush() = 0;
  // The head (and so the status) went out whole.
  virtual bool head_sent() const noexcept = 0;
  // Fields to send after the body, before its last put(); copied. A sink
  // that cannot carry them (HTTP/1.1 here) drops them.
  virtual void trailers(std::span<const trailer_field>) {}
};

// relay() as far as it goes without waiting (most bodies: all of them, and
// no coroutine started): the body's end, or a failure, in `status`; else
// where relay() goes on from: the source has nothing ready, or (`flush`) a
// batch was put and the sink still holds part of it.
struct relay_progress {
  std::optional<relay_status> status;
  bool flush = false;
  bool last = false;  // (with `flush`) the batch held was put as the body's end
};
relay_progress relay_now(body_source& in, body_sink& out);
// Moves `in` to `out` batch by batch until the body ends (a ready batch is
// written first); from where relay_now() stopped, when given what it said.
task<relay_status> relay(body_source& in, body_sink& out, std::optional<relay_progress> from = std::nullopt);
// Reads `in` to its end and drops it (a mirror's answer): ok once it ended.
task<relay_status> drain(body_source& in);

// The request as the codec parsed it.
struct stream_request {
  const message_head* head = nullptr;  // method, target, version (10, 11; 20 for HTTP/2), fields
  std::string_view client_ip;
  std::string_view scheme;  // "http" or "https", as the client spoke to vane
  bool has_body = false;
  bool body_length_unknown = false;  // no Content-Length: the body goes upstream chunked
  std::optional<std::uint64_t> content_length;
  bool expects_continue = false;  // the client waits for 100 Continue before its body
};

// How the upstream framed its response body, and what the route adds to the head.
struct response_shape {
  const header_ops* ops = nullptr;
  std::span<const std::string* const> cookies;  // Set-Cookie values added (null entries skipped)
  bool no_body = false;                         // HEAD, 204, 304
  bool chunked = false;                         // the upstream sent it chunked
  bool close_delimited = false;                 // it ends when the upstream closes
};

// The client's side of one request, as a stream sees it.
class downstream {
 public:
  virtual ~downstream() = default;
  virtual body_source& request_body() = 0;
  // Tells a client that waits for it to send its body; false: the client went away.
  virtual task<bool> send_continue() = 0;
  // A reply made by vane (text/plain) ends the request; `close`: the
  // connection cannot serve another request (a body left unread...). Records
  // the status (499 when the client went away). True: the connection goes on.
  virtual task<bool> reply(unsigned status, std::string_view body, bool close) = 0;
  // No further request on this connection: the response says so.
  virtual void close_after() = 0;
  // Prepares the response head, sent with the first body bytes; returns where the body goes.
  virtual body_sink& respond(const message_head& head, const response_shape& shape) = 0;
  // After the response body: true when the connection takes another request.
  virtual bool end_response(relay_status status) = 0;
};

// What a step of the stream decides: go on, or stop with a local reply;
// either after a wait (a fault's delay).
struct step_result {
  unsigned status = 0;  // 0: go on
  std::string_view body;
  bool close = false;  // the connection closes after the reply
  // The reply stands for the picked cluster's answer (its fault): counted
  // as an upstream attempt, so that a canary analysis sees it.
  bool upstream_answer = false;
  std::optional<duration> delay;
  static step_result next() { return {}; }
  static step_result stop(unsigned s, std::string_view b, bool close_after = false) {
    return {s, b, close_after, false, {}};
  }
  bool stops() const noexcept { return status != 0; }
};

}  // namespace vane::proxy
