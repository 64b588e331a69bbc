#pragma once
// The HTTP/1.x transport of the request path: heads read into views, bodies
// relayed in batches of pieces straight from the read buffer to the other
// side's socket (one gather write per batch, the head with the first), and
// re-framed on the way (Content-Length passes through, chunked is re-chunked,
// close-delimited becomes chunked or stays close-delimited).
//
// Every Asio operation on a proxy_stream is instantiated here, once: the
// request path above calls these functions and holds no Beast or Asio
// composed-operation template of its own (compile time and code size).
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/units.hpp"
#include "proxy/executor.hpp"
#include "proxy/http1/parser.hpp"
#include "proxy/stream.hpp"

namespace vane::proxy {

// read_failed: the sender went away or stalled; bad_input: what it sent is
// not a valid body (a broken chunk...); too_large: past the body limit.
enum class relay_status { ok, read_failed, bad_input, too_large, write_failed };

// Reads a message head into `p`, as Beast's async_read_header would, but
// looks at the raw bytes first: Beast unfolds obs-fold silently and takes a
// bare LF, and vane refuses both (proxy/strict.hpp). For requests, empty
// lines before the request line are skipped (RFC 9112 §2.2). On success the
// head's bytes are copied into `store` and its views moved there; the
// buffer holds what followed the head. The caller sets the stream's timeout.
template <bool isRequest>
task<boost::system::error_code> read_head(proxy_stream& stream, boost::beast::flat_buffer& buffer,
                                          h1_parser<isRequest>& p, std::string& store);

// A copy of a body being relayed, kept up to a cap (for mirroring).
struct body_tee {
  std::string data;
  std::uint64_t cap = 0;
  bool over = false;  // the body was larger than cap: no copy
  void add(std::string_view piece);
};

// Where a body relay stands between calls. A batch is a run of pieces the
// parser found in the input buffer (views into it); `used` bytes of that
// buffer are consumed once the batch is written, not before, so that a batch
// can be written again to another upstream (a retry) while `touched` is false.
struct body_batch {
  bool ready = false;    // the parser's pieces hold a batch not yet written
  std::size_t used = 0;  // input bytes behind the ready batch
  bool touched = false;  // some of the body was written and consumed
};

// Fills the parser's pieces with the next batch of the body: what `buffer`
// holds, or what one read brings when it holds no body byte. On ok, the
// batch is ready: at least one piece, or the body's end.
template <bool isRequest>
task<relay_status> next_batch(h1_parser<isRequest>& p, proxy_stream& in, boost::beast::flat_buffer& buffer,
                              body_batch& batch, duration io_timeout);

// How the body goes out.
struct relay_out {
  proxy_stream* stream = nullptr;
  std::string_view head;  // written with the first batch (empty: already written)
  bool chunked = false;   // re-framed as chunked (last chunk added at its end)
  duration io_timeout{};
  std::uint64_t* bytes = nullptr;  // body bytes written are added here
  body_tee* tee = nullptr;         // body bytes written are copied here
  bool head_sent = false;          // set once the head went out whole
};

// Writes the head (if any) and the body of `p` from `in` to out.stream,
// batch by batch, until the body ends (a ready batch is written first). A
// message without a body (p.is_done()) gets its head, and for chunked its last chunk.
template <bool isRequest>
task<relay_status> relay_body(h1_parser<isRequest>& p, proxy_stream& in, boost::beast::flat_buffer& buffer,
                              body_batch& batch, relay_out& out);

// Writes all of `buffers`; the caller set the timeout. Returns the error, if any.
task<boost::system::error_code> write_all(proxy_stream& stream, std::span<const boost::asio::const_buffer> buffers);
task<boost::system::error_code> write_all(proxy_stream& stream, std::string_view bytes);

// Reads what a stream has into `buffer` (at most `max` bytes).
task<boost::system::error_code> read_some(proxy_stream& stream, boost::beast::flat_buffer& buffer, std::size_t max);

// Waits `d` on the current worker (a fault's delay).
task<void> sleep_for(duration d);

// Hands back a buffer's memory after a body larger than a head went through it.
void shrink_after_body(boost::beast::flat_buffer& buffer);

}  // namespace vane::proxy
