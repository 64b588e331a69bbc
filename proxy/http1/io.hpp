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
#include <boost/container/small_vector.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/units.hpp"
#include "proxy/exchange.hpp"
#include "proxy/executor.hpp"
#include "proxy/http1/parser.hpp"
#include "proxy/stream.hpp"

namespace vane::proxy {

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

// The next batch of the body from what `buffer` already holds, with no I/O:
// ok (ready: pieces, or the end) or an error; nothing when a read is needed.
template <bool isRequest>
std::optional<relay_status> batch_from_buffer(h1_parser<isRequest>& p, boost::beast::flat_buffer& buffer, bool& ready,
                                              std::size_t& used);

// Fills the parser's pieces with the next batch of the body: what `buffer`
// holds, or what one read brings when it holds no body byte. On ok the batch
// is ready: at least one piece, or the body's end; `used` is the input bytes
// behind it, consumed from `buffer` once it is written.
template <bool isRequest>
task<relay_status> next_batch(h1_parser<isRequest>& p, proxy_stream& in, boost::beast::flat_buffer& buffer, bool& ready,
                              std::size_t& used, duration io_timeout);

// An HTTP/1.x body being received on `in` (a request's from the client, a
// response's from the upstream), parsed by `p` out of `buffer`.
template <bool isRequest>
class h1_source final : public body_source {
 public:
  h1_source(h1_parser<isRequest>& p, proxy_stream& in, boost::beast::flat_buffer& buffer, duration io_timeout)
      : p_(p), in_(in), buffer_(buffer), io_timeout_(io_timeout) {}
  std::optional<relay_status> poll() override { return batch_from_buffer(p_, buffer_, ready_, used_); }
  task<relay_status> next() override { return next_batch(p_, in_, buffer_, ready_, used_, io_timeout_); }
  std::span<const std::string_view> pieces() const noexcept override { return p_.pieces(); }
  bool done() const noexcept override { return p_.is_done(); }
  void consume() override;

 private:
  h1_parser<isRequest>& p_;
  proxy_stream& in_;
  boost::beast::flat_buffer& buffer_;
  duration io_timeout_;
  std::size_t used_ = 0;
};
extern template class h1_source<true>;
extern template class h1_source<false>;

// An HTTP/1.x body going out on a stream: Content-Length and
// close-delimited bodies as they are, or re-framed as chunked (the last chunk
// after the last piece). The head set by set_head() goes out with the first
// pieces, in one gather write.
class h1_sink final : public body_sink {
 public:
  // `bytes`: body bytes written are added there; `tee`: and copied there.
  h1_sink(proxy_stream& stream, duration io_timeout, std::uint64_t* bytes = nullptr, body_tee* tee = nullptr)
      : stream_(&stream), io_timeout_(io_timeout), bytes_(bytes), tee_(tee) {}
  void set_head(std::string_view head, bool chunked) {
    head_ = head;
    chunked_ = chunked;
  }
  put_result put(std::span<const std::string_view> pieces, bool last) override;
  task<bool> flush() override;
  bool head_sent() const noexcept override { return head_sent_; }
  // The head's bytes all went to the socket (head_sent() waits for the whole first batch with it).
  bool head_out() const noexcept { return head_out_; }

 private:
  void written();  // the batch went out whole

  proxy_stream* stream_;
  duration io_timeout_;
  std::uint64_t* bytes_;
  body_tee* tee_;
  std::string_view head_;
  bool chunked_ = false;
  bool head_sent_ = false;
  bool head_out_ = false;
  std::span<const std::string_view> batch_;
  std::uint64_t batch_size_ = 0;
  boost::container::small_vector<boost::asio::const_buffer, 8> list_;  // the gather write being done
  char size_line_[24] = {};
};

// Writes all of `buffers`; the caller set the timeout. Returns the error, if any.
task<boost::system::error_code> write_all(proxy_stream& stream, std::span<const boost::asio::const_buffer> buffers);
task<boost::system::error_code> write_all(proxy_stream& stream, std::string_view bytes);

// Reads what a stream has into `buffer` (at most `max` bytes).
task<boost::system::error_code> read_some(proxy_stream& stream, boost::beast::flat_buffer& buffer, std::size_t max);

// Waits `d` on the current worker (a fault's delay).
task<void> sleep_for(duration d);

// Hands back a buffer's memory after a body larger than a head went through it.
void shrink_after_body(boost::beast::flat_buffer& buffer);
struct shrink_when_done {  // shrink_after_body() when it ends, if set
  boost::beast::flat_buffer* buffer = nullptr;
  explicit shrink_when_done(boost::beast::flat_buffer* b) : buffer(b) {}
  shrink_when_done(const shrink_when_done&) = delete;
  shrink_when_done& operator=(const shrink_when_done&) = delete;
  ~shrink_when_done() {
    if (buffer) shrink_after_body(*buffer);
  }
};

}  // namespace vane::proxy
