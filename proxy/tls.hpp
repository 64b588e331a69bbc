#pragma once
// TLS for vane-proxy (OpenSSL 3 through Asio's ssl::context):
//  - server_tls: a listener's certificates, one SSL_CTX each, picked by the
//    client's SNI (exact name, then "*.suffix" wildcard, else the first
//    certificate); modern defaults (TLS 1.2 and 1.3 only, server cipher
//    preference, session cache and tickets, no renegotiation, ALPN h2 or
//    http/1.1 as the listener's protocols allow),
//    and optionally client certificates verified against a CA (mTLS).
//  - client_tls: a cluster's context for connections to its endpoints:
//    chain and host name verified against `ca` or the system store, SNI,
//    an optional client certificate.
// Both are built once per (config, file contents) and shared, immutable, by
// every worker: OpenSSL locks what it shares inside an SSL_CTX (the session
// cache), and each connection has its own SSL object.
#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "proxy/config.hpp"
#include "proxy/tls_config.hpp"

namespace vane::proxy {

// The files a TLS config reads, and their contents now: compared to see that
// a rotation happened (cert-manager and Secret volumes replace files in place
// or swap the `..data` symlink; reading through the path sees both). Files
// that cannot be read give "" for their content.
std::string tls_files_fingerprint(const listener_tls_config& c);
std::string tls_files_fingerprint(const cluster_tls_config& c);

class server_tls {
 public:
  // Loads every certificate and key; nullptr with `error` naming the file and
  // OpenSSL's reason when one is unreadable, malformed, or a key does not match.
  static std::shared_ptr<const server_tls> make(const listener_tls_config& config, std::string& error);
  ~server_tls();
  server_tls(const server_tls&) = delete;
  server_tls& operator=(const server_tls&) = delete;

  // The context new connections start with (the default certificate); the
  // SNI callback switches a handshake to the certificate its name selects.
  boost::asio::ssl::context& context() const { return *contexts_.front(); }
  const listener_tls_config& config() const { return config_; }
  const std::string& fingerprint() const { return fingerprint_; }
  // Index of the certificate a server name selects (tests, logs).
  std::size_t select(std::string_view server_name) const;

 private:
  server_tls() = default;
  static int on_server_name(SSL* ssl, int* alert, void* arg);
  listener_tls_config config_;
  std::string fingerprint_;
  std::vector<std::unique_ptr<boost::asio::ssl::context>> contexts_;
};

class client_tls {
 public:
  static std::shared_ptr<const client_tls> make(const cluster_tls_config& config, std::string& error);
  boost::asio::ssl::context& context() const { return *context_; }
  const cluster_tls_config& config() const { return config_; }
  const std::string& fingerprint() const { return fingerprint_; }
  // Sets SNI and the name (or IP) the peer's certificate must carry on a new
  // connection's SSL object. `host` is the endpoint's configured host.
  bool prepare(SSL* ssl, std::string_view host) const;

 private:
  client_tls() = default;
  cluster_tls_config config_;
  std::string fingerprint_;
  std::unique_ptr<boost::asio::ssl::context> context_;
};

// The runtime's TLS contexts by config, so that the tables built from one
// config share them (a traffic PUT or a health change loads no certificate),
// and certificates are reloaded when their files change.
class tls_cache {
 public:
  // The context for a config: the cached one, else built (nullptr + error when it cannot be).
  std::shared_ptr<const server_tls> server(const listener_tls_config& config, std::string& error);
  std::shared_ptr<const client_tls> client(const cluster_tls_config& config, std::string& error);
  // Re-reads every cached context's files. A set that changed and loads
  // replaces its context; one that does not load is logged (once per content)
  // and the old context stays. Returns how many were replaced and refused.
  struct refresh_result {
    std::size_t reloaded = 0;
    std::size_t refused = 0;
  };
  refresh_result refresh();
  // Forgets contexts no listener or cluster of `c` uses any more.
  void retain(const proxy_config& c);

 private:
  struct server_entry {
    std::shared_ptr<const server_tls> tls;
    std::string refused;  // the fingerprint last refused, not to log it every time
  };
  struct client_entry {
    std::shared_ptr<const client_tls> tls;
    std::string refused;
  };
  std::vector<server_entry> servers_;
  std::vector<client_entry> clients_;
};

}  // namespace vane::proxy
