#include "proxy/request_checks.hpp"

#include "proxy/strict.hpp"

namespace vane::proxy {

namespace http = boost::beast::http;

namespace {

bool is_absolute_form(std::string_view target) {
  return target.size() > 7 && (boost::beast::iequals(target.substr(0, 7), "http://") ||
                               (target.size() > 8 && boost::beast::iequals(target.substr(0, 8), "https://")));
}

}  // namespace

std::optional<refusal> check_request(const message_head& h, const limits_config& limits, request_target& out,
                                     std::string& target_store) {
  // Past max_headers fields or a field past max_header_field bytes (name and value).
  if (h.fields.size() > limits.max_headers) return refusal{431, "too many request headers\n"};
  std::size_t hosts = 0;
  std::string_view host;
  for (const auto& f : h.fields) {
    if (f.name.size() + f.value.size() > limits.max_header_field)
      return refusal{431, "request header field too large\n"};
    if (f.id == http::field::host && hosts++ == 0) host = f.value;
  }
  if (hosts > 1 || (hosts == 0 && h.version >= 11))
    return refusal{400, "bad request: exactly one Host header required\n"};
  if (h.target.size() > limits.max_request_target) return refusal{414, "request target too long\n"};
  const framing_fields framing = read_framing_fields(h);
  if (!framing.transfer_encoding_ok || !valid_host(host)) return refusal{400, "bad request framing or Host\n"};

  // A tunnel is not proxied (nor is its authority-form target); a request
  // target has no fragment (RFC 9112 §3.2): routing on a path that the
  // upstream reads up to the '#' would route one thing and send another.
  if (h.method == "CONNECT") return refusal{501, "CONNECT is not supported\n"};
  if (h.target.find('#') != std::string_view::npos) return refusal{400, "bad request target\n"};

  out = request_target{h.target, host, {}, hosts == 1, framing.single_content_length};
  // An absolute-form target (RFC 9112 §3.2.2) becomes origin-form, its
  // authority the Host: a host and port, not empty, without user info
  // (RFC 9110 §4.2), checked as a Host field is. The authority ends at the
  // path or the query; with no path the origin form's path is "/" (RFC 9112
  // §3.2.1): "http://a" is "/", and "http://a?q" is "/?q", which is not in
  // the received bytes the target is otherwise a view of: it is written to
  // `target_store`.
  if (is_absolute_form(h.target)) {
    const std::string_view rest = h.target.substr(h.target.find("//") + 2);
    const std::size_t end = rest.find_first_of("/?");
    const std::string_view authority = rest.substr(0, end);
    if (authority.empty() || !valid_host(authority)) return refusal{400, "bad request target\n"};
    out.host = out.host_override = authority;
    if (end == std::string_view::npos) {
      out.target = "/";
    } else if (rest[end] == '/') {
      out.target = rest.substr(end);
    } else {
      target_store.clear();
      target_store.push_back('/');
      target_store.append(rest.substr(end));
      out.target = target_store;
    }
  } else if (h.target == "*") {
    if (h.method != "OPTIONS") return refusal{400, "bad request target\n"};  // asterisk-form is OPTIONS' only
  } else if (h.target.empty() || h.target.front() != '/') {
    return refusal{400, "bad request target\n"};
  }
  return std::nullopt;
}

}  // namespace vane::proxy
