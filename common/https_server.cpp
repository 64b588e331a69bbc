#include "common/https_server.hpp"

#include <openssl/ssl.h>
#include <sys/stat.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>

#include "common/http_server_session.hpp"
#include "common/https_server_stream.hpp"

namespace vane {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

tls_server_files::tls_server_files(std::string certificate, std::string private_key)
    : certificate_(std::move(certificate)), private_key_(std::move(private_key)) {}

tls_server_files::~tls_server_files() = default;

tls_server_files::stamps tls_server_files::look() const {
  auto of = [](const std::string& path) {
    stamp s;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) s = stamp{st.st_dev, st.st_ino, st.st_size, st.st_mtim};
    return s;
  };
  return {of(certificate_), of(private_key_)};
}

std::shared_ptr<asio::ssl::context> tls_server_files::make(std::string& error) const {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                   asio::ssl::context::no_compression);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(certificate_, ec);
  if (ec) {
    error = certificate_ + ": " + ec.message();
    return nullptr;
  }
  ctx->use_private_key_file(private_key_, asio::ssl::context::pem, ec);
  if (ec) {
    error = private_key_ + ": " + ec.message();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    error = private_key_ + ": the key does not match the certificate " + certificate_;
    return nullptr;
  }
  return ctx;
}

bool tls_server_files::load(std::string& error) {
  std::lock_guard lock(mu_);
  auto now = look();
  auto ctx = make(error);
  if (!ctx) return false;
  context_ = std::move(ctx);
  loaded_ = tried_ = now;
  return true;
}

std::shared_ptr<asio::ssl::context> tls_server_files::current() {
  std::lock_guard lock(mu_);
  auto now = look();
  if (context_ && !(now == loaded_) && !(now == tried_)) {
    tried_ = now;
    std::string error;
    if (auto ctx = make(error)) {
      context_ = std::move(ctx);
      loaded_ = now;
      ++reloads_;
      log::info("TLS: {} reloaded", certificate_);
    } else {
      log::error("TLS: {} changed but does not load, the previous certificate stays: {}", certificate_, error);
    }
  }
  return context_;
}

std::size_t tls_server_files::reloads() const {
  std::lock_guard lock(mu_);
  return reloads_;
}

namespace {

bool tls_closed(const boost::system::error_code& ec) { return ec == asio::ssl::error::stream_truncated; }

asio::awaitable<void> tls_session(std::shared_ptr<tls_server_files> files,
                                  std::shared_ptr<const http_server_detail::server_state> state, tcp::socket socket) {
  // The context is held for the connection's life: a reload does not pull it away.
  std::shared_ptr<asio::ssl::context> ctx = files->current();
  if (!ctx) co_return;  // never loaded: serve_https's precondition
  http_server_detail::tls_server_stream stream(beast::tcp_stream(std::move(socket)), *ctx);
  beast::get_lowest_layer(stream).expires_after(state->options.timeout);
  auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
  if (ec) {
    log::debug("{}: TLS handshake failed: {}", state->options.log_name, ec.message());
    co_return;
  }
  co_await http_server_detail::serve_requests(*state, stream, tls_closed);
}

}  // namespace

asio::awaitable<void> serve_https(tcp::acceptor& acceptor, http_server_options options, http_handler handler,
                                  std::shared_ptr<tls_server_files> files) {
  auto state = std::make_shared<const http_server_detail::server_state>(
      http_server_detail::server_state{std::move(options), std::move(handler)});
  co_await http_server_detail::accept_loop(
      acceptor, state, [files](std::shared_ptr<const http_server_detail::server_state> st, tcp::socket socket) {
        return tls_session(files, std::move(st), std::move(socket));
      });
}

}  // namespace vane
