#include "tests/support/http_client.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

namespace vane::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto io_timeout = std::chrono::seconds(30);

struct http_client::impl {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bool open = false;
  std::uint16_t port;
};

http_client::http_client(std::uint16_t port) : impl_(std::make_unique<impl>()) { impl_->port = port; }
http_client::~http_client() = default;
bool http_client::connected() const { return impl_->open; }

http_response http_client::request(const std::string& method, const std::string& target,
                                   const std::vector<std::pair<std::string, std::string>>& headers,
                                   const std::string& body) {
  auto& s = *impl_;
  if (!s.open) {
    s.stream.expires_after(io_timeout);
    s.stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), s.port));
    s.buffer.clear();
    s.open = true;
  }
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(s.port));
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.body() = body;
    req.prepare_payload();
  }
  s.stream.expires_after(io_timeout);
  http::write(s.stream, req);
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  if (method == "HEAD") parser.skip(true);
  http::read(s.stream, s.buffer, parser);
  auto& res = parser.get();
  http_response out;
  out.status = res.result_int();
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(f.value());
  }
  out.body = res.body();
  out.keep_alive = res.keep_alive();
  if (!out.keep_alive) {
    boost::system::error_code ec;
    s.stream.socket().close(ec);
    s.open = false;
  }
  return out;
}

http_response fetch(std::uint16_t port, const std::string& method, const std::string& target,
                    const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body) {
  http_client c(port);
  return c.request(method, target, headers, body);
}

boost::json::value fetch_json(std::uint16_t port, const std::string& target) {
  return boost::json::parse(fetch(port, "GET", target).body);
}

struct raw_connection::impl {
  asio::io_context ioc;
  tcp::socket socket{ioc};
};

raw_connection::raw_connection(std::uint16_t port) : impl_(std::make_unique<impl>()) {
  impl_->socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  // Bounded blocking reads: a test never hangs on a proxy bug.
  timeval tv{30, 0};
  setsockopt(impl_->socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(impl_->socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}
raw_connection::~raw_connection() = default;
int raw_connection::fd() const { return impl_->socket.native_handle(); }

void raw_connection::send(const std::string& bytes) { send(bytes.data(), bytes.size()); }
void raw_connection::send(const char* data, std::size_t n) { asio::write(impl_->socket, asio::buffer(data, n)); }

std::string raw_connection::read_until(const std::string& needle) {
  char buf[16384];
  while (pending_.find(needle) == std::string::npos) {
    ssize_t n = ::recv(fd(), buf, sizeof buf, 0);
    if (n <= 0) break;
    pending_.append(buf, static_cast<std::size_t>(n));
  }
  return pending_;
}

void raw_connection::shutdown_send() { ::shutdown(fd(), SHUT_WR); }

std::string raw_connection::read_all() {
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd(), buf, sizeof buf, 0);
    if (n <= 0) break;
    pending_.append(buf, static_cast<std::size_t>(n));
  }
  return pending_;
}

}  // namespace vane::test
