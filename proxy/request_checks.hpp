#pragma once
// The checks a request head passes before it is routed (limits, Host,
// target, framing), and where it goes: one pure function over the head the
// codec parsed, so that an HTTP/1.1 and an HTTP/2 stream refuse alike and
// each refusal is unit-tested without a socket.
#include <optional>
#include <string>
#include <string_view>

#include "proxy/config.hpp"
#include "proxy/http1/message.hpp"

namespace vane::proxy {

// What the request path routes on and sends upstream.
struct request_target {
  std::string_view target;            // origin-form (an absolute form's path, or as received)
  std::string_view host;              // the Host routed on (an absolute form's authority, or the Host field)
  std::string_view host_override;     // when set, the Host sent upstream instead of the received one
  bool has_host = false;              // the request carried a Host field (HTTP/1.0 may not)
  bool single_content_length = true;  // else equal lengths repeated or listed: sent upstream as one
};

// A refusal: the status and body of the local reply; the connection is closed after it.
struct refusal {
  unsigned status;
  std::string_view body;
};

// Checks `h` against `limits` and RFC 9110/9112 (one Host on HTTP/1.1,
// Transfer-Encoding only `chunked` on HTTP/1.1, a Host that is a host, an
// origin-form, absolute-form or `*` target): a refusal, or nothing with `out`
// filled. `out` views `h`'s bytes, or `target_store` for an origin form that
// is not in them (`http://a?q` is `/?q`).
std::optional<refusal> check_request(const message_head& h, const limits_config& limits, request_target& out,
                                     std::string& target_store);

}  // namespace vane::proxy
