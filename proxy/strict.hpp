#pragma once
// What vane refuses at the trust boundary beyond what Beast's parser already
// refuses (RFC 9112 / RFC 9110): folded header lines, which Beast would
// silently unfold; Transfer-Encodings other than exactly `chunked`,
// which Beast would accept and frame differently from some upstreams (the
// classic smuggling gap); Host values that are not a host and port.
#include <string_view>

#include "proxy/http1/message.hpp"

namespace vane::proxy {

// The start of a message head as received (possibly more): true when a line
// of the head (before its blank line) begins with SP or HTAB — obs-fold
// (RFC 9112 §5.2), also for whitespace before the first line's end — or when
// a line ends in a bare LF (RFC 9112 §2.2 lets a recipient refuse it).
bool has_bad_line_break(std::string_view head);

// What a head's framing fields say, read in one walk over its fields.
struct framing_fields {
  // RFC 9112 §6.1: a message may carry Transfer-Encoding only on HTTP/1.1
  // and only as exactly one `chunked` (case-insensitive, surrounding OWS
  // allowed). For a request anything else is a 400; for a response a 502, as
  // nginx's "upstream sent unknown Transfer-Encoding" (another coding would
  // reach the client unannounced, or frame the body differently from the
  // client).
  bool transfer_encoding_ok = true;
  // At most one Content-Length field, and not a list ("3, 3"): Beast accepts
  // equal values repeated, which RFC 9110 §8.6 lets a recipient take as one
  // but forbids passing on as they are.
  bool single_content_length = true;
};
framing_fields read_framing_fields(const message_head& h);

// RFC 9110 §7.2: uri-host [ ":" port ], uri-host being a reg-name, an IPv4
// address or an IP-literal in brackets. Empty is accepted (no authority).
bool valid_host(std::string_view host);

}  // namespace vane::proxy
