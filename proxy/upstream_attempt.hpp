#pragma once
// One upstream attempt of a request, as a value: get a connection from the
// cluster's pool, write the request head and body, read the response head
// (interim 1xx dropped). The stream's retry step decides on the result
// (filters/retry); nothing here retries, counts or answers the client.
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/exchange.hpp"
#include "proxy/http1/head_out.hpp"
#include "proxy/http1/io.hpp"
#include "proxy/upstream_pool.hpp"

namespace vane::proxy {

enum class attempt_end {
  response,       // a final response head was read: `conn` holds the connection, the parser its head
  no_connection,  // the pool gave none: `acquire` says why
  write_failed,   // the upstream went away while the request was written to it
  read_failed,    // the upstream closed or reset before a response head
  timeout,        // no response head within the try's timeout
  client_failed,  // the client's body could not be read: `body` says how (read_failed, bad_input, too_large)
};

struct attempt_result {
  attempt_end end = attempt_end::no_connection;
  acquire_error acquire = acquire_error::none;
  relay_status body = relay_status::ok;
  // A reused idle connection that the upstream had closed before reading
  // anything of ours (the write failed, or the read met its end or a reset).
  bool stale = false;
  bool refused = false;  // (HTTP/2) stale because the upstream refused the stream unprocessed
  // (HTTP/1.1) the upstream answered before the request's end and stopped reading it: the answer is
  // relayed, the connection not reused.
  bool cut_short = false;
  std::size_t endpoint = std::numeric_limits<std::size_t>::max();  // of the connection used, if one was
  lease conn;                                                      // when end == response
};

struct attempt_request {
  std::string_view head;  // the request head for the upstream (HTTP/1.1 text)
  // Or, for an HTTP/2 upstream, what it is made from (the text is then not written).
  const message_head* message = nullptr;
  const request_out* how = nullptr;
  bool chunked = false;  // the body goes chunked
  body_source* body = nullptr;
  std::chrono::steady_clock::time_point deadline;  // for getting a connection
  duration try_timeout{};                          // for the response head, from the end of the request
  duration io_timeout{};                           // for each write of the request
  bool fresh_only = false;                         // skip idle connections (after a stale one)
  bool head_request = false;                       // the response has no body whatever it says
  std::uint32_t header_limit = 65536;
  std::uint64_t* bytes = nullptr;  // request body bytes written are added here
  body_tee* tee = nullptr;         // and copied here (mirroring)
  bool has_body = false;           // the request has a body (else the HTTP/2 stream ends with its head)
  bool grpc = false;               // a gRPC request: "te: trailers" goes to an HTTP/2 upstream
};

// Reads a response head past interim 1xx answers (other than 101, which is
// final here), a fresh parser emplaced in `response` (over `head`, `pieces`;
// the head's bytes kept in `store`) for each. The final head is due within
// `timeout` of the call: 1xx answers do not extend it (an upstream sending
// them on and on is timed out). `interim` says whether one came. Without
// `header_limit`, Beast's own.
task<boost::system::error_code> read_final_head(proxy_stream& stream, boost::beast::flat_buffer& buffer,
                                                std::optional<h1_parser<false>>& response, message_head& head,
                                                std::vector<std::string_view>& pieces, std::string& store,
                                                duration timeout, std::optional<std::uint32_t> header_limit,
                                                bool head_request, bool& interim);

// The request goes out through `sink` (emplaced here); the response's parser
// is emplaced in `response` (over `head`, `pieces`; the head's bytes kept in
// `store`). Both belong to the caller, out of this coroutine's frame (kept small).
task<attempt_result> attempt_upstream(upstream_pool& pool, const attempt_request& request, std::optional<h1_sink>& sink,
                                      std::optional<h1_parser<false>>& response, message_head& head,
                                      std::vector<std::string_view>& pieces, std::string& store);

// The local reply for a failure to get a connection.
struct failure_reply {
  unsigned status;
  std::string_view body;
};
failure_reply reply_for(acquire_error e);

}  // namespace vane::proxy
