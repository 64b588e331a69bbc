#include "proxy/http2/grpc_health.hpp"

#include <nghttp2/nghttp2.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <optional>

#include "common/grpc.hpp"
#include "proxy/tls.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

std::string grpc_health_request(const std::string& service) {
  std::string message;
  if (!service.empty()) {  // field 1 (service), length-delimited; a default value is not sent
    message.push_back('\x0a');
    for (std::size_t n = service.size();; n >>= 7) {
      message.push_back(static_cast<char>((n & 0x7f) | (n > 0x7f ? 0x80 : 0)));
      if (n <= 0x7f) break;
    }
    message += service;
  }
  std::string frame(5, '\0');  // not compressed, then the length, big-endian
  const auto n = static_cast<std::uint32_t>(message.size());
  frame[1] = static_cast<char>(n >> 24);
  frame[2] = static_cast<char>(n >> 16);
  frame[3] = static_cast<char>(n >> 8);
  frame[4] = static_cast<char>(n);
  return frame + message;
}

int grpc_health_status(std::string_view m) {
  // HealthCheckResponse: field 1 (status), a varint; other fields skipped.
  std::size_t i = 0;
  auto varint = [&](std::uint64_t& v) {
    v = 0;
    for (int shift = 0; i < m.size() && shift < 64; shift += 7) {
      const auto b = static_cast<std::uint8_t>(m[i++]);
      v |= std::uint64_t{b & 0x7fU} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  };
  int status = 0;
  while (i < m.size()) {
    std::uint64_t key = 0, v = 0;
    if (!varint(key)) return 0;
    switch (key & 7) {
      case 0:
        if (!varint(v)) return 0;
        if (key >> 3 == 1) status = static_cast<int>(v);
        break;
      case 2:
        if (!varint(v) || v > m.size() - i) return 0;
        i += v;
        break;
      case 5:
        i += 4;
        break;
      case 1:
        i += 8;
        break;
      default:
        return 0;
    }
  }
  return status;
}

namespace {

// What the one call brought back.
struct call_state {
  std::int32_t id = -1;
  std::string body;  // its DATA: the gRPC frame of the answer
  std::optional<unsigned> grpc_status;
  unsigned http_status = 0;
  bool done = false;
  std::string request;  // the request's gRPC frame
  std::size_t sent = 0;
};

int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
              const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* user) {
  auto& c = *static_cast<call_state*>(user);
  if (frame->hd.stream_id != c.id) return 0;
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") std::from_chars(v.data(), v.data() + v.size(), c.http_status);
  if (n == "grpc-status") c.grpc_status = parse_grpc_status(v);
  return 0;
}

int on_data(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data, std::size_t len, void* user) {
  auto& c = *static_cast<call_state*>(user);
  if (id == c.id && c.body.size() < std::size_t{64} * 1024) c.body.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

int on_close(nghttp2_session*, std::int32_t id, std::uint32_t, void* user) {
  auto& c = *static_cast<call_state*>(user);
  if (id == c.id) c.done = true;
  return 0;
}

ssize_t read_request(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length, std::uint32_t* flags,
                     nghttp2_data_source*, void* user) {
  auto& c = *static_cast<call_state*>(user);
  const std::size_t n = std::min(length, c.request.size() - c.sent);
  if (n) std::memcpy(buf, c.request.data() + c.sent, n);
  c.sent += n;
  if (c.sent == c.request.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

// The call on a connected stream (plain or TLS); false when it could not be made.
template <class Stream>
asio::awaitable<bool> exchange(Stream& stream, nghttp2_session* session, call_state& c) {
  std::string in(std::size_t{16} * 1024, '\0');
  for (;;) {
    std::string out;
    for (;;) {
      const std::uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session, &data);
      if (n <= 0) break;
      out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    if (!out.empty()) {
      auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out), nothrow);
      if (ec) co_return false;
    }
    if (c.done) co_return true;
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(in), nothrow);
    if (ec) co_return false;
    if (nghttp2_session_mem_recv(session, reinterpret_cast<const std::uint8_t*>(in.data()), n) < 0) co_return false;
  }
}

}  // namespace

asio::awaitable<bool> grpc_health_probe(asio::any_io_executor ex, tcp::endpoint endpoint, std::string service,
                                        std::string authority, duration timeout, std::shared_ptr<const client_tls> tls,
                                        std::string tls_host) {
  // Shared with the deadline's handler, which may already be queued when the probe returns.
  auto shared_socket = std::make_shared<tcp::socket>(ex);
  tcp::socket& socket = *shared_socket;
  asio::steady_timer timer(ex);
  timer.expires_after(timeout);
  // The deadline closes the socket: whatever is pending then fails.
  timer.async_wait([shared_socket](boost::system::error_code ec) {
    if (!ec) {
      boost::system::error_code ignored;
      shared_socket->close(ignored);
    }
  });
  struct cancel_timer {
    asio::steady_timer& t;
    ~cancel_timer() { t.cancel(); }
  } cancel{timer};
  auto [cec] = co_await socket.async_connect(endpoint, nothrow);
  if (cec) co_return false;

  call_state c;
  c.request = grpc_health_request(service);
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
  nghttp2_session* session = nullptr;
  nghttp2_session_client_new(&session, cbs, &c);
  nghttp2_session_callbacks_del(cbs);
  struct del {
    nghttp2_session* s;
    ~del() { nghttp2_session_del(s); }
  } owned{session};
  nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
  const std::string_view scheme = tls ? "https" : "http";
  auto nv = [](std::string_view n, std::string_view v) {
    return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                      reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                      NGHTTP2_NV_FLAG_NONE};
  };
  const nghttp2_nv head[] = {nv(":method", "POST"),
                             nv(":scheme", scheme),
                             nv(":authority", authority),
                             nv(":path", "/grpc.health.v1.Health/Check"),
                             nv("content-type", "application/grpc"),
                             nv("te", "trailers"),
                             nv("user-agent", "vane-health-check")};
  nghttp2_data_provider provider{};
  provider.read_callback = read_request;
  c.id = nghttp2_submit_request(session, nullptr, head, std::size(head), &provider, nullptr);
  if (c.id < 0) co_return false;

  bool made = false;
  if (tls) {
    asio::ssl::stream<tcp::socket&> secure(socket, tls->context());
    tls->prepare(secure.native_handle(), tls_host);
    auto [hec] = co_await secure.async_handshake(asio::ssl::stream_base::client, nothrow);
    if (hec) co_return false;
    made = co_await exchange(secure, session, c);
  } else {
    made = co_await exchange(socket, session, c);
  }
  // Passes: HTTP 200, grpc-status OK, SERVING (1) in the answer's message (after its 5-byte prefix).
  if (!made || c.http_status != 200 || c.grpc_status != 0U || c.body.size() < 5 || c.body[0] != 0) co_return false;
  co_return grpc_health_status(std::string_view(c.body).substr(5)) == 1;
}

}  // namespace vane::proxy
