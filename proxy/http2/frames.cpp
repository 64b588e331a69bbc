#include "proxy/http2/frames.hpp"

#include "common/ows.hpp"

namespace vane::proxy {

std::optional<h2_error_reason> h2_abuse_meter::frame_received(std::uint8_t type, std::size_t length,
                                                              std::uint8_t flags) {
  if (type == NGHTTP2_DATA) {
    const bool empty = length == 0 && (flags & NGHTTP2_FLAG_END_STREAM) == 0;
    empty_data_in_row_ = empty ? empty_data_in_row_ + 1 : 0;
    if (empty_data_in_row_ > max_empty_data_in_row) return h2_error_reason::empty_frames;
  } else if (type == NGHTTP2_WINDOW_UPDATE) {
    if (++window_updates_in_ > window_updates_allowed + window_updates_per_data * data_frames_out_)
      return h2_error_reason::window_update_flood;
  }
  return std::nullopt;
}

std::optional<h2_error_reason> h2_abuse_meter::stream_closed(bool reset, bool young) {
  ++streams_closed_;
  if (reset && young) ++streams_reset_young_;
  if (streams_closed_ >= rapid_reset_min_streams && streams_reset_young_ * 2 > streams_closed_)
    return h2_error_reason::rapid_reset;
  return std::nullopt;
}

namespace {

// (By length first: most names are none of these, and cost one compare.)
bool not_for_h2(std::string_view lower) {
  switch (lower.size()) {
    case 2:
      return lower == "te";
    case 4:
      return lower == "host";
    case 7:
      return lower == "upgrade";
    case 10:
      return lower == "connection" || lower == "keep-alive";
    case 16:
      return lower == "proxy-connection";
    case 17:
      return lower == "transfer-encoding";
    default:
      return false;
  }
}

nghttp2_nv nv(std::string_view n, std::string_view v) {
  return {reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
          reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(), NGHTTP2_NV_FLAG_NONE};
}

// Adds field `name` (in lower case; a copy of it, if one was made, is what
// `names` holds from `at`): its value without the whitespace around it (as a
// line is read; HTTP/2 forbids it, RFC 9113 §8.2.1, and a route's operation
// may carry some), Host as :authority (out[2]), and the fields HTTP/2
// forbids dropped, their copy too.
void add_field(std::vector<nghttp2_nv>& out, std::string& names, std::size_t at, std::string_view name,
               std::string_view value) {
  value = trim_ows(value);
  if (name == "host") out[2] = nv(":authority", value);
  if (not_for_h2(name)) {
    names.resize(at);
    return;
  }
  out.push_back(nv(name, value));
}

}  // namespace

// The head is one proxy/http1/head_out wrote (a mirror's copy, kept as text
// because it outlives its request); here it is read back.
bool h2_request_fields(std::string_view head, bool tls, bool grpc, std::string& names, std::vector<nghttp2_nv>& out) {
  names.clear();
  names.reserve(head.size());  // (no reallocation below: the pairs point into it)
  out.clear();
  out.reserve(16);
  const std::size_t line_end = head.find("\r\n");
  if (line_end == std::string_view::npos) return false;
  const std::string_view line = head.substr(0, line_end);
  const std::size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 <= sp1 + 1 || sp1 == 0) return false;
  out.push_back(nv(":method", line.substr(0, sp1)));
  out.push_back(nv(":scheme", tls ? "https" : "http"));
  out.push_back(nv(":authority", {}));  // the Host's value, below
  out.push_back(nv(":path", line.substr(sp1 + 1, sp2 - sp1 - 1)));
  std::string_view rest = head.substr(line_end + 2);
  while (!rest.empty()) {
    const std::size_t end = rest.find("\r\n");
    const std::string_view field = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 2);
    const std::size_t colon = field.find(':');
    if (field.empty() || colon == std::string_view::npos || colon == 0) continue;
    const std::size_t at = names.size();
    append_lower(names, field.substr(0, colon));
    add_field(out, names, at, std::string_view(names).substr(at), field.substr(colon + 1));
  }
  if (grpc) out.push_back(nv("te", "trailers"));
  return true;
}

bool h2_request_fields(const message_head& in, const request_out& how, bool tls, bool grpc, h2_request_scratch& scratch,
                       std::vector<nghttp2_nv>& out) {
  if (in.method.empty() || how.target.empty()) return false;
  scratch.fields.clear();
  request_fields(in, how, scratch.fields, scratch.number);
  std::size_t total = 0;
  for (const auto& [name, value] : scratch.fields) total += name.size();
  std::string& names = scratch.names;
  names.clear();
  names.reserve(total);  // (no reallocation below: the pairs point into it)
  out.clear();
  out.reserve(scratch.fields.size() + 5);
  out.push_back(nv(":method", in.method));
  out.push_back(nv(":scheme", tls ? "https" : "http"));
  out.push_back(nv(":authority", {}));  // the Host's value, below
  out.push_back(nv(":path", how.target));
  for (const auto& [name, value] : scratch.fields) {
    const std::size_t at = names.size();
    add_field(out, names, at, lower_name(names, name), value);
  }
  if (grpc) out.push_back(nv("te", "trailers"));
  return true;
}

}  // namespace vane::proxy
