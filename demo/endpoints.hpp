#pragma once
// vane-demo's HTTP endpoints, whatever the protocol they came by (HTTP/1.1 in
// demo_service.cpp, HTTP/2 in h2_server.cpp): a request described, an answer
// decided; each codec reads the body and writes the answer its own way.
#include <boost/json/object.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "demo/state.hpp"

namespace vane::demo {

struct http_request {
  std::string_view method;
  std::string_view target;  // path and query
  std::string_view path;
  std::string_view host;
  std::uint64_t received = 0;   // body bytes
  bool has_body = false;        // a body was announced or came: received and checksum are reported
  std::uint64_t checksum = 0;   // FNV-1a of the body
  std::string_view small_body;  // its first 4 KiB
  boost::json::object headers;  // lower-case names, repeated ones joined by ','; filled for /headers only
};

struct http_reply {
  enum class kind { answer, reset, bytes };
  kind what = kind::answer;
  unsigned status = 200;
  std::string content_type;  // none when empty
  std::string body;
  std::uint64_t bytes = 0;  // kind::bytes: that many bytes of the pattern (/bytes/N)
  bool chunked = false;     // kind::bytes, HTTP/1.1: with chunked encoding
};

// Service requests: all but /_demo/... and /healthz. They are counted, delayed
// by the latency and failed by the error and reset percentages.
inline bool is_service(std::string_view path) { return !path.starts_with("/_demo/") && path != "/healthz"; }

// A service request's bookkeeping (requests, last_host, last_body); returns its
// index among service requests, which decides its injected failure.
std::uint64_t begin_service(state& st, const http_request& req);

// The answer, after the latency of a service request (`n`: begin_service's index).
http_reply answer(state& st, const http_request& req, std::uint64_t n);

}  // namespace vane::demo
