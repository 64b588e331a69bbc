#pragma once
// A message head as a codec hands it to the request path: the request line
// or status line and the fields, all views into the bytes received (kept by
// the connection until the exchange ends). Nothing is copied per field and
// nothing is allocated once the vector has grown to a connection's usual
// head. An HTTP/2 stream fills the same struct from its decoded header block.
#include <boost/beast/core/string.hpp>  // beast::iequals: field names and tokens compare case-insensitively
#include <boost/beast/http/field.hpp>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace vane::proxy {

// Hop-by-hop in every message (RFC 9110 §7.6.1, and Transfer-Encoding,
// which vane frames itself): never passed on as received.
inline bool always_hop_by_hop(boost::beast::http::field id) noexcept {
  namespace http = boost::beast::http;
  switch (id) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
      return true;
    default:
      return false;
  }
}

struct field_view {
  boost::beast::http::field id = boost::beast::http::field::unknown;  // the known name, or unknown
  std::string_view name;                                              // as received
  std::string_view value;                                             // without surrounding whitespace
};

struct message_head {
  std::string_view method;  // requests
  std::string_view target;  // requests
  unsigned status = 0;      // responses
  std::string_view reason;  // responses
  unsigned version = 11;    // 10 or 11
  std::vector<field_view> fields;

  // The first field named `name` (case-insensitive).
  std::optional<std::string_view> find(std::string_view name) const noexcept;
  std::optional<std::string_view> find(boost::beast::http::field id) const noexcept;
  std::size_t count(boost::beast::http::field id) const noexcept;
  void clear() noexcept {
    method = target = reason = {};
    status = 0;
    version = 11;
    fields.clear();
  }
};

}  // namespace vane::proxy
