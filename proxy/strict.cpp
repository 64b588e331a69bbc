#include "proxy/strict.hpp"

#include <boost/beast/http/field.hpp>

#include "common/ows.hpp"

namespace vane::proxy {

namespace http = boost::beast::http;

bool has_bad_line_break(std::string_view head) {
  // One pass over the line breaks: the byte before and after each one, up to
  // the first CRLF CRLF that ends the head (if it is here yet; the body may
  // follow). Beast's parser would refuse a bare LF too, but only once the
  // head's end is here, and "\r\n\n" never ends it: the client would wait.
  for (std::size_t i = head.find('\n'); i != std::string_view::npos; i = head.find('\n', i + 1)) {
    if (i == 0 || head[i - 1] != '\r') return true;  // a bare LF
    if (i + 1 == head.size()) break;
    const char next = head[i + 1];
    if (next == ' ' || next == '\t') return true;
    if (next == '\r' && i > 0 && head[i - 1] == '\r' && i + 2 < head.size() && head[i + 2] == '\n') return false;
  }
  return false;
}

framing_fields read_framing_fields(const message_head& h) {
  framing_fields out;
  std::size_t codings = 0;
  std::size_t lengths = 0;
  for (const auto& f : h.fields) {
    if (f.id == http::field::transfer_encoding) {
      if (++codings > 1 || h.version < 11 || !boost::beast::iequals(trim_ows(f.value), "chunked"))
        out.transfer_encoding_ok = false;
    } else if (f.id == http::field::content_length) {
      if (++lengths > 1 || f.value.find(',') != std::string_view::npos) out.single_content_length = false;
    }
  }
  return out;
}

namespace {

bool reg_name_char(char c) {
  // unreserved / pct-encoded / sub-delims (RFC 3986 §3.2.2)
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '%':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
      return true;
    default:
      return false;
  }
}

bool valid_port(std::string_view p) {
  if (p.empty() || p.size() > 5) return p.empty();  // "host:" is allowed by the grammar (empty port)
  for (char c : p)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

bool valid_host(std::string_view host) {
  if (host.empty()) return true;
  if (host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    for (char c : host.substr(1, close - 1))
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
        return false;
    auto rest = host.substr(close + 1);
    return rest.empty() || (rest.front() == ':' && valid_port(rest.substr(1)));
  }
  auto colon = host.find(':');
  auto name = host.substr(0, colon);
  if (name.empty()) return false;
  for (char c : name)
    if (!reg_name_char(c)) return false;
  return colon == std::string_view::npos || valid_port(host.substr(colon + 1));
}

}  // namespace vane::proxy
