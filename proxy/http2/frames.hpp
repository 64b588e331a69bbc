#pragma once
// The frame-level parts of vane's HTTP/2 that need no socket (so the fuzz
// targets reach them): the abuse checks nghttp2 does not make, and the
// HTTP/2 fields of a request sent upstream, made from the received head or
// from an HTTP/1.1 head of ours (a mirror's copy).
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/http1/head_out.hpp"
#include "proxy/stats.hpp"

namespace vane::proxy {

// Counts what a client's connection sends and says when to end it
// (Envoy's checks; nghttp2 has its own for SETTINGS/PING floods, reset rate
// and CONTINUATION): DATA frames with no payload and no END_STREAM one after
// another; WINDOW_UPDATE frames far beyond what the DATA frames sent call
// for; once enough streams closed, most of them reset (by either side)
// within a second of opening.
class h2_abuse_meter {
 public:
  static constexpr std::uint32_t max_empty_data_in_row = 10;
  static constexpr std::uint64_t window_updates_allowed = 100;  // beyond window_updates_per_data per DATA sent
  static constexpr std::uint64_t window_updates_per_data = 10;
  static constexpr std::uint64_t rapid_reset_min_streams = 500;  // Envoy's

  std::optional<h2_error_reason> frame_received(std::uint8_t type, std::size_t length, std::uint8_t flags);
  void frame_sent(std::uint8_t type) {
    if (type == NGHTTP2_DATA) ++data_frames_out_;
  }
  // `reset`: the stream did not end both ways (RST_STREAM from either side); `young`: within a second.
  std::optional<h2_error_reason> stream_closed(bool reset, bool young);

 private:
  std::uint32_t empty_data_in_row_ = 0;
  std::uint64_t window_updates_in_ = 0, data_frames_out_ = 0;
  std::uint64_t streams_closed_ = 0, streams_reset_young_ = 0;
};

// Appends `name` to `out` in lower case (HTTP/2 field names are): one resize
// and a branch-free loop, where push_back per character cost ~10 instructions
// a byte on every request head.
inline void append_lower(std::string& out, std::string_view name) {
  const std::size_t at = out.size();
  out.resize(at + name.size());
  char* p = out.data() + at;
  for (const char c : name)
    *p++ = static_cast<char>(c | (static_cast<int>(static_cast<unsigned char>(c - 'A') < 26) << 5));
}

// `name` in lower case: `name` itself when it is already (HTTP/2 peers send
// lower case, and so do the names vane adds), else a lower-cased copy
// appended to `store`, which the caller has reserved room in (the views it
// gave out stay valid).
inline std::string_view lower_name(std::string& store, std::string_view name) {
  unsigned upper = 0;
  for (const char c : name) upper |= static_cast<unsigned>(static_cast<unsigned char>(c - 'A') < 26);
  if (upper == 0) return name;
  const std::size_t at = store.size();
  append_lower(store, name);
  return std::string_view(store).substr(at);
}

// The request's HTTP/2 fields from an HTTP/1.1 request head of ours ("METHOD
// TARGET HTTP/1.1", then "Name: value" lines): :method, :scheme, :authority
// (from Host), :path, the other fields with lower-case names, less those
// HTTP/2 forbids (RFC 9113 §8.2.2); "te: trailers" for gRPC. The pairs point
// into `head` and `names`. False when the request line cannot be read.
bool h2_request_fields(std::string_view head, bool tls, bool grpc, std::string& names, std::vector<nghttp2_nv>& out);

// The same fields straight from the received head and how it goes upstream
// (proxy/http1/head_out's request_fields: the same decisions as the
// HTTP/1.1 head, with no text written and read back). The pairs point into
// `in`, `how` and the scratch, which the caller reuses.
struct h2_request_scratch {
  std::string names, number;
  std::vector<std::pair<std::string_view, std::string_view>> fields;
};
bool h2_request_fields(const message_head& in, const request_out& how, bool tls, bool grpc, h2_request_scratch& scratch,
                       std::vector<nghttp2_nv>& out);

}  // namespace vane::proxy
