#include "proxy/http1/head_out.hpp"

#include <boost/beast/http/status.hpp>

#include "common/ows.hpp"

namespace vane::proxy {

namespace http = boost::beast::http;

namespace {

// Calls fn(token) for each element of a comma-separated list (RFC 9110 §5.6.1),
// whitespace around elements removed, empty elements skipped; stops when fn returns true.
template <class Fn>
bool any_token(std::string_view list, Fn fn) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view token = trim_ows(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (!token.empty() && fn(token)) return true;
  }
  return false;
}

bool names_a_field(std::string_view token) {
  return !boost::beast::iequals(token, "close") && !boost::beast::iequals(token, "keep-alive") &&
         !boost::beast::iequals(token, "connection") && !boost::beast::iequals(token, "content-length") &&
         !boost::beast::iequals(token, "host") && !boost::beast::iequals(token, "transfer-encoding");
}

bool named_by_connection(const message_head& h, std::string_view name) {
  for (const auto& c : h.fields) {
    if (c.id != http::field::connection) continue;
    if (any_token(c.value, [&](std::string_view t) { return names_a_field(t) && boost::beast::iequals(t, name); }))
      return true;
  }
  return false;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ", 2).append(value).append("\r\n", 2);
}

// Copies fields into a head. A field received as exactly "Name: value\r\n"
// is copied as its line, and consecutive such lines (most of a head) in one
// append: the received head holds them back to back.
class field_copier {
 public:
  explicit field_copier(std::string& out) : out_(out) {}
  field_copier(const field_copier&) = delete;
  field_copier& operator=(const field_copier&) = delete;
  ~field_copier() { flush(); }
  void add(const field_view& f) {
    const char* name = f.name.data();
    const char* value = f.value.data();
    const std::size_t n = f.name.size();
    // (Views from h1_parser: a non-empty value lies inside the head, so the
    // two bytes after it are there — the line's end or more of the head.)
    if (!f.value.empty() && value == name + n + 2 && name[n] == ':' && name[n + 1] == ' ' &&
        value[f.value.size()] == '\r' && value[f.value.size() + 1] == '\n') {
      const char* line_end = value + f.value.size() + 2;
      if (name != end_) {
        flush();
        begin_ = name;
      }
      end_ = line_end;
      return;
    }
    flush();
    append_field(out_, f.name, f.value);
  }
  void flush() {
    if (begin_) out_.append(begin_, static_cast<std::size_t>(end_ - begin_));
    begin_ = end_ = nullptr;
  }

 private:
  std::string& out_;
  const char* begin_ = nullptr;
  const char* end_ = nullptr;
};

bool in_ops(const header_ops* ops, std::string_view name) {
  if (!ops) return false;
  for (const auto& r : ops->remove)
    if (boost::beast::iequals(r, name)) return true;
  for (const auto& [n, v] : ops->set)
    if (boost::beast::iequals(n, name)) return true;
  return false;
}

void append_ops(std::string& out, const header_ops* ops) {
  if (!ops) return;
  for (const auto& [name, value] : ops->set) append_field(out, name, value);
  for (const auto& [name, value] : ops->add) append_field(out, name, value);
}

void append_decimal(std::string& out, std::uint64_t v) {
  char text[20];
  std::size_t i = sizeof text;
  do {
    text[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  out.append(text + i, sizeof text - i);
}

void append_status_line(std::string& out, unsigned code, std::string_view reason) {
  const char line[13] = {'H',
                         'T',
                         'T',
                         'P',
                         '/',
                         '1',
                         '.',
                         '1',
                         ' ',
                         static_cast<char>('0' + code / 100 % 10),
                         static_cast<char>('0' + code / 10 % 10),
                         static_cast<char>('0' + code % 10),
                         ' '};
  out.append(line, sizeof line);
  if (reason.empty()) {
    const auto standard = http::obsolete_reason(static_cast<http::status>(code));
    reason = std::string_view(standard.data(), standard.size());
  }
  out.append(reason).append("\r\n", 2);
}

void append_connection(std::string& out, connection_header c) {
  if (c == connection_header::close) out.append("Connection: close\r\n");
  if (c == connection_header::keep_alive) out.append("Connection: keep-alive\r\n");
}

// True when a Connection field of `h` names some field (rare: clients send
// close or keep-alive, which name none), so that each field must be checked.
bool connection_names_fields(const message_head& h) {
  for (const auto& c : h.fields)
    if (c.id == http::field::connection && any_token(c.value, names_a_field)) return true;
  return false;
}

bool skipped(const message_head& h, const field_view& f, bool named) {
  return always_hop_by_hop(f.id) || (named && named_by_connection(h, f.name));
}

// A received request field goes upstream as it came: not hop-by-hop, and not
// replaced by what `how` adds (Host, Content-Length, forwarding fields, the
// route's operations) nor dropped by it (Expect).
bool passed_on(const message_head& in, const request_out& how, const field_view& f, bool named) {
  if (skipped(in, f, named)) return false;
  if (f.id == http::field::host && !how.host.empty()) return false;
  if (f.id == http::field::expect && how.drop_expect) return false;
  if (f.id == http::field::content_length && how.content_length) return false;
  if (how.forwarded && how.forwarded->replaces(f)) return false;
  return !in_ops(how.ops, f.name);
}

}  // namespace

void forwarded_fields::collect(const message_head& h, std::string_view client_ip, std::string_view proto,
                               bool trust_incoming) {
  static constexpr std::string_view xff_name = "x-forwarded-for: ";
  trust_ = trust_incoming;
  lines_.assign(xff_name);
  via_.clear();
  bool proto_kept = false;
  for (const auto& f : h.fields) {
    if (f.id == http::field::via) {
      via_.append(f.value).append(", ");
    } else if (f.id == http::field::unknown) {
      if (boost::beast::iequals(f.name, "x-forwarded-for")) {
        // Several fields are one comma-separated list (RFC 9110 §5.3), in order.
        if (trust_incoming) lines_.append(f.value).append(", ");
      } else if (trust_incoming && boost::beast::iequals(f.name, "x-forwarded-proto")) {
        proto_kept = true;
      }
    }
  }
  for_ = {xff_name.size(), lines_.size() + client_ip.size() - xff_name.size()};
  lines_.append(client_ip).append("\r\n");
  proto_ = {};
  if (!proto_kept) {
    lines_.append("x-forwarded-proto: ");
    proto_ = {lines_.size(), proto.size()};
    lines_.append(proto).append("\r\n");
  }
  lines_.append("Via: ");
  via_at_.at = lines_.size();
  lines_.append(via_).append("1.1 vane");
  via_at_.size = lines_.size() - via_at_.at;
  lines_.append("\r\n", 2);
}

bool forwarded_fields::replaces(const field_view& f) const noexcept {
  if (f.id == http::field::via) return true;
  if (f.id != http::field::unknown) return false;
  return boost::beast::iequals(f.name, "x-forwarded-for") ||
         (!trust_ && boost::beast::iequals(f.name, "x-forwarded-proto"));
}

void write_request_head(const message_head& in, const request_out& how, std::string& out) {
  out.clear();
  out.append(in.method).append(" ", 1).append(how.target).append(" HTTP/1.1\r\n");
  const bool named = connection_names_fields(in);
  {
    field_copier copy(out);
    for (const auto& f : in.fields)
      if (passed_on(in, how, f, named)) copy.add(f);
  }
  append_ops(out, how.ops);
  if (!how.host.empty() && !in_ops(how.ops, "host")) append_field(out, "Host", how.host);  // (a route's set Host)
  if (how.content_length) {
    out.append("Content-Length: ");
    append_decimal(out, *how.content_length);
    out.append("\r\n", 2);
  }
  if (how.chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (how.forwarded) out.append(how.forwarded->lines());
  out.append("\r\n", 2);
}

void request_fields(const message_head& in, const request_out& how,
                    std::vector<std::pair<std::string_view, std::string_view>>& out, std::string& number) {
  const bool named = connection_names_fields(in);
  for (const auto& f : in.fields)
    if (passed_on(in, how, f, named)) out.emplace_back(f.name, f.value);
  if (how.ops) {
    for (const auto& [name, value] : how.ops->set) out.emplace_back(name, value);
    for (const auto& [name, value] : how.ops->add) out.emplace_back(name, value);
  }
  if (!how.host.empty() && !in_ops(how.ops, "host")) out.emplace_back("host", how.host);
  if (how.content_length) {
    number.clear();
    append_decimal(number, *how.content_length);
    out.emplace_back("content-length", number);
  }
  if (how.forwarded) {
    out.emplace_back("x-forwarded-for", how.forwarded->for_value());
    if (!how.forwarded->proto().empty()) out.emplace_back("x-forwarded-proto", how.forwarded->proto());
    out.emplace_back("via", how.forwarded->via());
  }
}

void write_response_head(const message_head& in, const response_out& how, std::string& out) {
  out.clear();
  append_status_line(out, in.status, in.reason);
  const bool named = connection_names_fields(in);
  {
    field_copier copy(out);
    for (const auto& f : in.fields)
      if (!skipped(in, f, named) && !in_ops(how.ops, f.name)) copy.add(f);
  }
  append_ops(out, how.ops);
  for (const std::string* cookie : how.cookies)
    if (cookie) append_field(out, "Set-Cookie", *cookie);
  if (how.chunked) out.append("Transfer-Encoding: chunked\r\n");
  append_connection(out, how.connection);
  out.append("\r\n", 2);
}

void response_fields(const message_head& in, const response_out& how,
                     std::vector<std::pair<std::string_view, std::string_view>>& out) {
  const bool named = connection_names_fields(in);
  for (const auto& f : in.fields)
    if (!skipped(in, f, named) && !in_ops(how.ops, f.name)) out.emplace_back(f.name, f.value);
  if (how.ops) {
    for (const auto& [name, value] : how.ops->set) out.emplace_back(name, value);
    for (const auto& [name, value] : how.ops->add) out.emplace_back(name, value);
  }
  for (const std::string* cookie : how.cookies)
    if (cookie) out.emplace_back("set-cookie", *cookie);
}

void write_local_reply(unsigned status, std::string_view body, connection_header connection, std::string& out) {
  out.clear();
  append_status_line(out, status, {});
  out.append("Server: vane\r\nContent-Type: text/plain\r\n");
  append_connection(out, connection);
  out.append("Content-Length: ");
  append_decimal(out, body.size());
  out.append("\r\n\r\n", 4).append(body);
}

std::optional<std::string_view> value_sent(const message_head& in, const header_ops* ops, std::string_view name) {
  if (ops) {
    for (const auto& [n, v] : ops->set)
      if (boost::beast::iequals(n, name)) return std::string_view(v);
  }
  if (!in_ops(ops, name)) {
    const bool named = connection_names_fields(in);
    for (const auto& f : in.fields)
      if (boost::beast::iequals(f.name, name) && !skipped(in, f, named)) return f.value;
  }
  if (ops) {
    for (const auto& [n, v] : ops->add)
      if (boost::beast::iequals(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

}  // namespace vane::proxy
