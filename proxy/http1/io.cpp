#include "proxy/http1/io.hpp"

#include <array>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>

#include "proxy/strict.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using error_code = boost::system::error_code;
constexpr auto nothrow = task_nothrow;

namespace {

constexpr std::size_t head_read_size = 4096;
constexpr std::size_t body_read_size = std::size_t{16} * 1024;

// The gather list of one write: the head, then each piece (framed when chunked).
class gather {
 public:
  void add(std::string_view bytes) {
    if (!bytes.empty()) list_.emplace_back(bytes.data(), bytes.size());
  }
  void clear() { list_.clear(); }
  std::span<const asio::const_buffer> buffers() const { return list_; }
  std::size_t size() const {
    std::size_t n = 0;
    for (const auto& b : list_) n += b.size();
    return n;
  }
  // Drops the first `n` bytes (written already).
  void consume(std::size_t n) {
    std::size_t drop = 0;
    while (drop < list_.size() && n >= list_[drop].size()) n -= list_[drop++].size();
    list_.erase(list_.begin(), list_.begin() + static_cast<std::ptrdiff_t>(drop));
    if (n > 0 && !list_.empty()) list_.front() += n;
  }

 private:
  std::vector<asio::const_buffer> list_;
};

// "HEX\r\n" for a chunk of `size` bytes, into `line` (at least 18 bytes).
std::string_view chunk_size_line(std::uint64_t size, char* line) {
  static constexpr char digits[] = "0123456789abcdef";
  char hex[16];
  std::size_t n = 0;
  do {
    hex[n++] = digits[size & 0xf];
    size >>= 4;
  } while (size);
  for (std::size_t i = 0; i < n; ++i) line[i] = hex[n - 1 - i];
  line[n] = '\r';
  line[n + 1] = '\n';
  return {line, n + 2};
}

}  // namespace

void body_tee::add(std::string_view piece) {
  if (over) return;
  if (data.size() + piece.size() > cap) {
    over = true;
    std::string().swap(data);
    return;
  }
  data.append(piece);
}

void shrink_after_body(beast::flat_buffer& buffer) {
  // A head fits in head_read_size: keep that much (a reallocation per request
  // otherwise), hand back what a body's reads grew.
  if (buffer.capacity() > 2 * head_read_size) buffer.shrink_to_fit();
}

// Writes what a plain socket takes now, without waiting: most writes fit its
// send buffer, and then no operation is started and the coroutine does not
// suspend (a writev, as nginx does). Under TLS nothing is written here (the
// engine owns the socket). Returns the bytes written; `ec` is set on an
// error other than would_block.
std::size_t write_now(proxy_stream& stream, std::span<const asio::const_buffer> buffers, error_code& ec) {
  ec = {};
  if (stream.tls()) return 0;
  worker_socket& s = stream.socket();
  if (!s.non_blocking()) s.non_blocking(true, ec);  // a write that cannot finish returns would_block
  if (ec) return 0;
  const std::size_t n = s.write_some(buffers, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
  return n;
}

task<error_code> write_all(proxy_stream& stream, std::span<const asio::const_buffer> buffers) {
  auto [ec, n] = co_await asio::async_write(stream, buffers, nothrow);
  stream.expires_never();
  co_return stream.timed_out(ec);
}

task<error_code> write_all(proxy_stream& stream, std::string_view bytes) {
  const std::array<asio::const_buffer, 1> one{asio::buffer(bytes.data(), bytes.size())};
  co_return co_await write_all(stream, std::span<const asio::const_buffer>(one));
}

task<void> sleep_for(duration d) {
  worker_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(nothrow);
}

task<error_code> read_some(proxy_stream& stream, beast::flat_buffer& buffer, std::size_t max) {
  auto [ec, n] = co_await stream.async_read_some(buffer.prepare(max), nothrow);
  stream.expires_never();
  if (!ec) buffer.commit(n);
  co_return stream.timed_out(ec);
}

template <bool isRequest>
task<error_code> read_head(proxy_stream& stream, beast::flat_buffer& buffer, h1_parser<isRequest>& p,
                           std::string& store) {
  error_code ec;
  bool received = buffer.size() > 0;
  // Beast takes a head line by line as it comes (refusing a bad field at
  // once), and reports each with views into what it was given: the bytes it
  // took stay in the buffer, in front, until the head is whole.
  std::size_t parsed = 0;
  for (;;) {
    if constexpr (isRequest) {
      while (parsed == 0 && buffer.size() >= 2 && static_cast<const char*>(buffer.data().data())[0] == '\r' &&
             static_cast<const char*>(buffer.data().data())[1] == '\n')
        buffer.consume(2);
    }
    const auto* bytes = static_cast<const char*>(buffer.data().data());
    if (buffer.size() > parsed) {
      if (has_bad_line_break(std::string_view(bytes, buffer.size()))) co_return http::error::bad_value;
      parsed += p.put(asio::const_buffer(bytes + parsed, buffer.size() - parsed), ec);
      if (ec == http::error::need_more) ec = {};
      if (ec) co_return ec;
      if (p.is_header_done()) {
        store.assign(bytes, parsed);
        p.rebase(bytes, parsed, store.data());
        buffer.consume(parsed);
        stream.expires_never();
        co_return ec;
      }
    }
    auto [rec, n] = co_await stream.async_read_some(buffer.prepare(head_read_size), nothrow);
    if (rec) {
      stream.expires_never();
      if (rec == asio::error::eof) co_return received ? http::error::partial_message : http::error::end_of_stream;
      co_return stream.timed_out(rec);
    }
    buffer.commit(n);
    received = true;
    // The buffer may have moved its bytes to make room: so do the views.
    if (const auto* moved = static_cast<const char*>(buffer.data().data()); moved != bytes && parsed > 0)
      p.rebase(bytes, parsed, moved);
  }
}

template <bool isRequest>
task<relay_status> next_batch(h1_parser<isRequest>& p, proxy_stream& in, beast::flat_buffer& buffer, body_batch& batch,
                              duration io_timeout) {
  p.eager(true);
  p.pieces().clear();
  batch.ready = false;
  batch.used = 0;
  for (;;) {
    if (p.is_done()) break;
    if (buffer.size() > 0) {
      error_code ec;
      const std::size_t used = p.put(buffer.data(), ec);
      if (ec == http::error::need_more) ec = {};
      if (ec == http::error::body_limit) co_return relay_status::too_large;
      if (ec) co_return relay_status::bad_input;
      if (!p.pieces().empty()) {
        batch.used = used;
        break;
      }
      buffer.consume(used);  // framing only (chunk sizes): nothing to write
      if (p.is_done()) break;
    }
    in.expires_after(io_timeout);
    auto [rec, n] = co_await in.async_read_some(buffer.prepare(body_read_size), nothrow);
    in.expires_never();
    if (rec == asio::error::eof && p.need_eof()) {
      error_code ec;
      p.put_eof(ec);  // the body ends with the connection
      if (ec) co_return relay_status::read_failed;
      break;
    }
    if (rec) co_return relay_status::read_failed;
    buffer.commit(n);
  }
  batch.ready = true;
  co_return relay_status::ok;
}

template <bool isRequest>
task<relay_status> relay_body(h1_parser<isRequest>& p, proxy_stream& in, beast::flat_buffer& buffer, body_batch& batch,
                              relay_out& out) {
  gather list;
  char size_line[24];
  static constexpr std::string_view crlf = "\r\n", last_chunk = "0\r\n\r\n";
  for (;;) {
    if (!batch.ready) {
      if (const auto status = co_await next_batch(p, in, buffer, batch, out.io_timeout); status != relay_status::ok)
        co_return status;
    }
    list.clear();
    const bool head_pending = !out.head_sent && !out.head.empty();
    if (head_pending) list.add(out.head);
    std::uint64_t size = 0;
    for (auto piece : p.pieces()) size += piece.size();
    if (out.chunked && size > 0) list.add(chunk_size_line(size, size_line));
    for (auto piece : p.pieces()) list.add(piece);
    if (out.chunked && size > 0) list.add(crlf);
    if (out.chunked && p.is_done()) list.add(last_chunk);
    if (!list.buffers().empty()) {
      error_code ec;
      const std::size_t total = list.size(), done = write_now(*out.stream, list.buffers(), ec);
      if (ec) co_return relay_status::write_failed;
      if (done < total) {  // the rest when the socket takes it
        list.consume(done);
        out.stream->expires_after(out.io_timeout);
        if (co_await write_all(*out.stream, list.buffers())) co_return relay_status::write_failed;
      }
    }
    out.head_sent = true;
    if (out.bytes) *out.bytes += size;
    if (out.tee)
      for (auto piece : p.pieces()) out.tee->add(piece);
    buffer.consume(batch.used);
    batch.touched = batch.touched || batch.used > 0;
    batch.ready = false;
    batch.used = 0;
    p.pieces().clear();
    if (p.is_done()) co_return relay_status::ok;
  }
}

template task<error_code> read_head(proxy_stream&, beast::flat_buffer&, h1_parser<true>&, std::string&);
template task<error_code> read_head(proxy_stream&, beast::flat_buffer&, h1_parser<false>&, std::string&);
template task<relay_status> next_batch(h1_parser<true>&, proxy_stream&, beast::flat_buffer&, body_batch&, duration);
template task<relay_status> next_batch(h1_parser<false>&, proxy_stream&, beast::flat_buffer&, body_batch&, duration);
template task<relay_status> relay_body(h1_parser<true>&, proxy_stream&, beast::flat_buffer&, body_batch&, relay_out&);
template task<relay_status> relay_body(h1_parser<false>&, proxy_stream&, beast::flat_buffer&, body_batch&, relay_out&);

}  // namespace vane::proxy
