#pragma once
// The `tls` keys of listeners and clusters (config.hpp includes this; the
// OpenSSL side is in tls.hpp). Paths are resolved against the config file's
// directory when relative.
#include <string>
#include <vector>

#include "common/units.hpp"

namespace vane::proxy {

struct tls_certificate_config {
  std::string certificate;                // PEM chain, leaf first
  std::string private_key;                // PEM
  std::vector<std::string> server_names;  // SNI names ("*.example.com" allowed); none: only the default
  bool operator==(const tls_certificate_config&) const = default;
};

struct listener_tls_config {
  // certificates[0] is the default: for clients that send no SNI or a name no
  // certificate lists (as nginx's first server and Envoy's first chain).
  std::vector<tls_certificate_config> certificates;
  std::string client_ca;                    // "" = no client certificate is asked for
  bool require_client_certificate = false;  // with client_ca: refuse clients without one
  duration handshake_timeout = std::chrono::seconds(10);
  bool alpn_h2 = true, alpn_http1 = true;  // what ALPN may choose (the listener's protocols)
  bool operator==(const listener_tls_config&) const = default;
};

struct cluster_tls_config {
  std::string sni;          // server name sent and verified; "" = the endpoint's host name (or IP)
  std::string ca;           // PEM bundle; "" = the system store
  bool verify = true;       // verify the chain and the name; off only for tests and trusted links
  std::string certificate;  // client certificate (mTLS), with private_key
  std::string private_key;
  bool h2 = false;  // ALPN offers "h2" (the cluster's protocol), else "http/1.1"
  bool operator==(const cluster_tls_config&) const = default;
};

}  // namespace vane::proxy
