#pragma once
// TLS for tests: throwaway certificates made at test time with the openssl
// command (none are committed), and a blocking TLS client that reports what
// the server presented and sends HTTP/1.1 requests on one connection.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/http_client.hpp"

namespace vane::test {

struct issued_cert {
  std::string certificate;  // PEM file
  std::string private_key;  // PEM file
  std::string serial;       // as `openssl x509 -serial` prints it (upper-case hex)
};

// A certificate authority in a fresh temporary directory.
class test_pki {
 public:
  explicit test_pki(const std::string& name = "vane test CA");
  const std::string& dir() const { return dir_; }
  const std::string& ca_certificate() const { return ca_crt_; }
  // A leaf signed by this CA for `dns_names` (the first is its CN), with
  // 127.0.0.1 as an IP SAN too; files named after `file_stem` in dir().
  issued_cert issue(const std::string& file_stem, const std::vector<std::string>& dns_names);

 private:
  std::string dir_, ca_crt_, ca_key_;
};

class tls_client {
 public:
  // Connects to 127.0.0.1:port and handshakes, sending `sni` (none when
  // empty), verifying the chain against `ca_file` (not the name), and
  // presenting a client certificate when given. Throws on failure.
  tls_client(std::uint16_t port, const std::string& sni, const std::string& ca_file,
             const std::string& certificate = "", const std::string& private_key = "");
  // Resumes the session of `previous` (after at least one request on it: TLS
  // 1.3 tickets arrive after the handshake).
  tls_client(std::uint16_t port, const std::string& sni, const std::string& ca_file, const tls_client& previous);
  ~tls_client();
  bool session_reused() const;
  std::string peer_serial() const;       // upper-case hex
  std::string peer_common_name() const;  // CN of the subject
  std::string protocol() const;          // "TLSv1.3"...
  std::string alpn() const;              // "" when none was agreed
  // A request on this connection (keep-alive); status 0 when the connection failed.
  http_response get(const std::string& target) { return request("GET", target); }
  // With a body (application/json) when not empty.
  http_response request(const std::string& method, const std::string& target, const std::string& body = "");

 private:
  // `resume`: an SSL_SESSION* to offer (its reference is taken over), or null.
  tls_client(std::uint16_t port, const std::string& sni, const std::string& ca_file, const std::string& certificate,
             const std::string& private_key, void* resume);
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace vane::test
