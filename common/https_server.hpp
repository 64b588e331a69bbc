#pragma once
// The HTTP server of common/http_server.hpp over TLS, with a certificate and
// key read from files and read again when they change: vane-control's
// admission webhook, whose certificate is a mounted Secret that cert-manager
// renews (the kubelet swaps the volume's ..data symlink, so the path names a
// new file). Apart from http_server.cpp because it needs OpenSSL.
#include <sys/types.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>

#include "common/http_server.hpp"

namespace boost::asio::ssl {
class context;
}

namespace vane {

// A server TLS context (TLS 1.2 and 1.3) from a certificate chain and a key
// in PEM files. Each new connection asks for current(), which looks at the
// two files (stat: device, inode, size, modification time; a few
// microseconds) and loads them again when they changed. A pair that does not
// load (a half-written file, a key that does not match) is logged once and
// the previous context stays in use; the next change is tried again.
// Connections keep the context they started with.
class tls_server_files {
 public:
  tls_server_files(std::string certificate, std::string private_key);
  ~tls_server_files();
  // Loads the files for the first time: false with `error` when they do not load.
  bool load(std::string& error);
  // The context for a new connection (reloaded first when the files changed); null before a successful load().
  std::shared_ptr<boost::asio::ssl::context> current();
  std::size_t reloads() const;  // contexts loaded after the first (tests)

 private:
  struct stamp {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    timespec mtime{};
    bool operator==(const stamp& o) const {
      return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
             mtime.tv_nsec == o.mtime.tv_nsec;
    }
  };
  struct stamps {
    stamp certificate, key;
    bool operator==(const stamps&) const = default;
  };
  stamps look() const;
  std::shared_ptr<boost::asio::ssl::context> make(std::string& error) const;

  std::string certificate_, private_key_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> context_;
  stamps loaded_{}, tried_{};
  std::size_t reloads_ = 0;
};

// As serve_http, with a TLS handshake (under options.timeout) before the
// requests of each connection, on the context `files` gives at that moment.
boost::asio::awaitable<void> serve_https(boost::asio::ip::tcp::acceptor& acceptor, http_server_options options,
                                         http_handler handler, std::shared_ptr<tls_server_files> files);

}  // namespace vane
