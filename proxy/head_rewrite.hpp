#pragma once
// What the proxy changes in a head before passing it on, each in one walk
// over the fields (no lookup by name per field kind, no allocation for the
// lines vane adds). Beast's `basic_fields` keeps an ordered tree next to the
// list: every erase or set by name is a tree search with case-insensitive
// compares, and every set allocates an element — about a tenth of the
// proxy's user-space instructions per request when done field by field
// (docs/benchmarks.md).
#include <boost/beast/http/fields.hpp>
#include <string>
#include <string_view>

namespace vane::proxy {

// RFC 9110 §7.6.1: Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade and any field that Connection names never cross
// a proxy; they are erased from `f`. A Connection token that names
// Content-Length, Host or Transfer-Encoding is ignored (those fields framed and
// routed the message; see docs/reliability.md).
void remove_hop_by_hop(boost::beast::http::fields& f);

// The forwarding fields of a request sent upstream: X-Forwarded-For (the
// client address; appended to the client's when `trust_incoming`),
// X-Forwarded-Proto (the client's kept when `trust_incoming`, else ours) and
// Via ("1.1 vane", appended to any). The client's copies are erased from `f`
// (except a trusted X-Forwarded-Proto) and the new ones rendered as head
// lines into `lines`, which write_head appends after the fields; `scratch` is
// a buffer the caller reuses. set_forwarded() puts the same values into a
// fields object (for a copy of the request made afterwards: a mirror).
class forwarded_fields {
 public:
  void rewrite(boost::beast::http::fields& f, std::string_view client_ip, std::string_view proto, bool trust_incoming);
  // "x-forwarded-for: ...\r\n[x-forwarded-proto: ...\r\n]Via: ...\r\n"
  std::string_view lines() const noexcept { return lines_; }
  void set_on(boost::beast::http::fields& f) const;

 private:
  std::string lines_;
  std::string via_;                        // the client's Via values, while the walk collects them
  std::size_t xff_end_ = 0, xfp_end_ = 0;  // where each line ends in lines_
};

}  // namespace vane::proxy
