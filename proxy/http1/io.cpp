#include "proxy/http1/io.hpp"

#include <array>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <cstring>

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
// suspend. Under TLS nothing is written here (the engine owns the socket).
// `total` is the buffers' size. Returns the bytes written; `ec` is set on an
// error other than would_block.
//
// One buffer goes out with send(2). A few small ones (a response's head and
// the body that came with it) are copied into one and sent so too: a
// sendmsg(2) copies the message header and the iovec array in from user
// space on every call, which costs this VM's kernel more than the copy of a
// few hundred bytes costs (perf, 200,000 requests through one worker).
std::size_t write_now(proxy_stream& stream, std::span<const asio::const_buffer> buffers, std::size_t total,
                      error_code& ec) {
  ec = {};
  if (stream.tls()) return 0;
  short_read_socket& s = stream.io();
  if (!s.non_blocking()) s.non_blocking(true, ec);  // a write that cannot finish returns would_block
  if (ec) return 0;
  constexpr std::size_t gather_max = 2048;
  std::size_t n = 0;
  if (buffers.size() == 1) {
    n = s.write_some(buffers.front(), ec);
  } else if (total <= gather_max) {
    alignas(64) thread_local std::array<char, gather_max> gathered;
    std::size_t at = 0;
    for (const auto& b : buffers) {
      std::memcpy(gathered.data() + at, b.data(), b.size());
      at += b.size();
    }
    n = s.write_some(asio::const_buffer(gathered.data(), total), ec);
  } else {
    n = s.write_some(buffers, ec);
  }
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
std::optional<relay_status> batch_from_buffer(h1_parser<isRequest>& p, beast::flat_buffer& buffer, bool& ready,
                                              std::size_t& used) {
  p.eager(true);
  p.pieces().clear();
  ready = false;
  used = 0;
  if (!p.is_done() && buffer.size() > 0) {
    error_code ec;
    const std::size_t n = p.put(buffer.data(), ec);
    if (ec == http::error::need_more) ec = {};
    if (ec == http::error::body_limit) return relay_status::too_large;
    if (ec) return relay_status::bad_input;
    if (!p.pieces().empty()) {
      used = n;
      ready = true;
      return relay_status::ok;
    }
    buffer.consume(n);  // framing only (chunk sizes): nothing to write
  }
  if (!p.is_done()) return std::nullopt;
  ready = true;
  return relay_status::ok;
}

template <bool isRequest>
task<relay_status> next_batch(h1_parser<isRequest>& p, proxy_stream& in, beast::flat_buffer& buffer, bool& ready,
                              std::size_t& used, duration io_timeout) {
  for (;;) {
    if (const auto status = batch_from_buffer(p, buffer, ready, used)) co_return *status;
    in.expires_after(io_timeout);
    auto [rec, n] = co_await in.async_read_some(buffer.prepare(body_read_size), nothrow);
    in.expires_never();
    if (rec == asio::error::eof && p.need_eof()) {
      error_code ec;
      p.put_eof(ec);  // the body ends with the connection
      if (ec) co_return relay_status::read_failed;
      ready = true;
      co_return relay_status::ok;
    }
    if (rec) co_return relay_status::read_failed;
    buffer.commit(n);
  }
}

template <bool isRequest>
void h1_source<isRequest>::consume() {
  buffer_.consume(used_);
  touched_ = touched_ || used_ > 0;
  ready_ = false;
  used_ = 0;
  p_.pieces().clear();
}

body_sink::put_result h1_sink::put(std::span<const std::string_view> pieces, bool last) {
  static constexpr std::string_view crlf = "\r\n", last_chunk = "0\r\n\r\n";
  list_.clear();
  auto add = [this](std::string_view bytes) {
    if (!bytes.empty()) list_.emplace_back(bytes.data(), bytes.size());
  };
  if (!head_sent_) add(head_);
  std::uint64_t size = 0;
  for (auto piece : pieces) size += piece.size();
  if (chunked_ && size > 0) add(chunk_size_line(size, size_line_));
  for (auto piece : pieces) add(piece);
  if (chunked_ && size > 0) add(crlf);
  if (chunked_ && last) add(last_chunk);
  batch_ = pieces;
  batch_size_ = size;
  if (!list_.empty()) {
    std::size_t total = 0;
    for (const auto& b : list_) total += b.size();
    error_code ec;
    std::size_t done = write_now(*stream_, list_, total, ec);
    if (!head_sent_ && done >= head_.size()) head_out_ = true;
    if (ec) return put_result::failed;
    if (done < total) {  // the rest when the socket takes it (flush)
      std::size_t drop = 0;
      while (drop < list_.size() && done >= list_[drop].size()) done -= list_[drop++].size();
      list_.erase(list_.begin(), list_.begin() + static_cast<std::ptrdiff_t>(drop));
      if (done > 0 && !list_.empty()) list_.front() += done;
      return put_result::pending;
    }
  }
  written();
  return put_result::written;
}

task<bool> h1_sink::flush() {
  stream_->expires_after(io_timeout_);
  const std::span<const asio::const_buffer> rest(list_.data(), list_.size());
  const error_code ec = co_await write_all(*stream_, rest);
  if (ec) co_return false;
  written();
  co_return true;
}

void h1_sink::written() {
  head_sent_ = head_out_ = true;
  if (bytes_) *bytes_ += batch_size_;
  if (tee_)
    for (auto piece : batch_) tee_->add(piece);
  list_.clear();
}

template task<error_code> read_head(proxy_stream&, beast::flat_buffer&, h1_parser<true>&, std::string&);
template task<error_code> read_head(proxy_stream&, beast::flat_buffer&, h1_parser<false>&, std::string&);
template task<relay_status> next_batch(h1_parser<true>&, proxy_stream&, beast::flat_buffer&, bool&, std::size_t&,
                                       duration);
template task<relay_status> next_batch(h1_parser<false>&, proxy_stream&, beast::flat_buffer&, bool&, std::size_t&,
                                       duration);
template std::optional<relay_status> batch_from_buffer(h1_parser<true>&, beast::flat_buffer&, bool&, std::size_t&);
template std::optional<relay_status> batch_from_buffer(h1_parser<false>&, beast::flat_buffer&, bool&, std::size_t&);
template class h1_source<true>;
template class h1_source<false>;

}  // namespace vane::proxy
