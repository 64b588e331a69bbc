#pragma once
// The heads vane sends, written in one pass into a buffer the connection
// reuses: a received head (views) minus what must not cross the proxy, plus
// what the route adds. No field container is built: each received field is
// either copied as it came (name case and order kept) or skipped.
//
// What never crosses (RFC 9110 §7.6.1): Connection, Keep-Alive,
// Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade and any field
// that Connection names. A Connection token naming Content-Length, Host or
// Transfer-Encoding is ignored: those fields framed and routed the message
// as sent, and erasing them would make the next hop frame it differently
// (docs/reliability.md).
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/config.hpp"
#include "proxy/http1/message.hpp"

namespace vane::proxy {

// The forwarding fields of a request sent upstream: X-Forwarded-For (the
// client address; appended to the client's when `trust_incoming`),
// X-Forwarded-Proto (the client's kept when `trust_incoming`, else ours) and
// Via ("1.1 vane", appended to any). collect() renders them as head lines;
// replaces() says which received fields those lines stand for.
class forwarded_fields {
 public:
  void collect(const message_head& h, std::string_view client_ip, std::string_view proto, bool trust_incoming);
  bool replaces(const field_view& f) const noexcept;
  // "x-forwarded-for: ...\r\n[x-forwarded-proto: ...\r\n]Via: ...\r\n"
  std::string_view lines() const noexcept { return lines_; }
  // The same values, for a codec that frames fields its own way (HTTP/2);
  // proto() is empty when the client's is kept.
  std::string_view for_value() const noexcept { return value(for_); }
  std::string_view proto() const noexcept { return value(proto_); }
  std::string_view via() const noexcept { return value(via_at_); }

 private:
  struct span_at {
    std::size_t at = 0, size = 0;
  };
  std::string_view value(span_at v) const noexcept { return std::string_view(lines_).substr(v.at, v.size); }
  std::string lines_;
  span_at for_, proto_, via_at_;
  std::string via_;  // the client's Via values, while the walk collects them
  bool trust_ = false;
};

// How a received request head goes upstream (always as HTTP/1.1).
struct request_out {
  std::string_view target;  // origin-form: the received target, or an absolute form's path
  std::string_view host;    // when not empty, replaces every received Host (absolute form, HTTP/1.0 without one)
  const header_ops* ops = nullptr;
  const forwarded_fields* forwarded = nullptr;
  bool chunked = false;                         // the body goes chunked: "Transfer-Encoding: chunked" is added
  bool drop_expect = false;                     // vane answered 100-continue itself
  std::optional<std::uint64_t> content_length;  // replaces a received Content-Length (a mirror's copy)
};
// Clears `out` and writes the head, ending with its blank line.
void write_request_head(const message_head& in, const request_out& how, std::string& out);

// The fields write_request_head() writes, in the same order, as name-value
// pairs appended to `out`, for a codec that frames a head its own way
// (HTTP/2): no request line, no Transfer-Encoding (`how.chunked` is not
// used), the Host among them. A Content-Length it makes is written in
// `number` (which the pairs then view).
void request_fields(const message_head& in, const request_out& how,
                    std::vector<std::pair<std::string_view, std::string_view>>& out, std::string& number);

// What the client is told of the connection: nothing (HTTP/1.1 keep-alive),
// "Connection: close", or "Connection: keep-alive" (an HTTP/1.0 client kept).
enum class connection_header { none, close, keep_alive };
// The Connection field of a response to a client of `client_version`: an
// HTTP/1.1 client keeps the connection unless told `close`; an HTTP/1.0
// client closes unless told `keep-alive` (RFC 9112 §9.3).
constexpr connection_header connection_for(bool keep_alive, unsigned client_version) noexcept {
  if (!keep_alive) return connection_header::close;
  return client_version < 11 ? connection_header::keep_alive : connection_header::none;
}

struct response_out {
  const header_ops* ops = nullptr;
  std::span<const std::string* const> cookies;  // Set-Cookie values added (null entries skipped)
  bool chunked = false;                         // "Transfer-Encoding: chunked" is added
  connection_header connection = connection_header::none;
};
// Clears `out` and writes "HTTP/1.1 CODE REASON" (the reason received, or
// the standard one), the fields and the blank line.
void write_response_head(const message_head& in, const response_out& how, std::string& out);

// The fields of a response head as write_response_head() writes them
// (hop-by-hop ones dropped, the route's operations applied, the cookies
// added), without the status line and framing: for a codec that frames a
// head its own way (HTTP/2). Appended to `out` as name-value pairs, in order.
void response_fields(const message_head& in, const response_out& how,
                     std::vector<std::pair<std::string_view, std::string_view>>& out);

// A whole reply made by vane itself (text/plain), head and body, into `out`.
void write_local_reply(unsigned status, std::string_view body, connection_header connection, std::string& out);

// The value of field `name` in the request sent upstream (the route's ops applied), if any.
std::optional<std::string_view> value_sent(const message_head& in, const header_ops* ops, std::string_view name);

}  // namespace vane::proxy
