#pragma once
// The request and response heads the proxy sends, serialized into a buffer
// the connection reuses. Beast's serializer walks the fields through layers
// of buffer-sequence iterators on every write — about a tenth of the proxy's
// user-space time per request in a profile (docs/benchmarks.md); the head is
// a few hundred bytes that one pass copies. Bodies still go through Beast's
// serializer wherever they must be framed (chunked, streaming); the head
// written here is byte for byte what Beast would write (a unit test checks).
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <string>
#include <string_view>

namespace vane::proxy {

// "METHOD TARGET HTTP/x.y\r\n" + fields + `extra` + "\r\n", appended to `out`
// after clearing it; `extra` is whole lines ending in CRLF (forwarding fields).
void write_head(const boost::beast::http::request_header<>& h, std::string& out, std::string_view extra = {});
// "HTTP/x.y CODE REASON\r\n" + fields + "\r\n" (the reason received, or the standard one).
void write_head(const boost::beast::http::response_header<>& h, std::string& out);

}  // namespace vane::proxy
