#include "proxy/tls.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <cstring>

#include "common/log.hpp"
#include "common/yaml_doc.hpp"

namespace vane::proxy {

namespace ssl = boost::asio::ssl;

namespace {

// Mozilla's "intermediate" TLS 1.2 suites (forward secret AEAD only); TLS 1.3
// keeps OpenSSL's defaults, which are all fine.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

void add_file(std::string& out, const std::string& path) {
  if (path.empty()) return;
  std::string ignored;
  auto text = read_file(path, ignored);
  out += path;
  out += '\0';
  out += text.value_or("");
  out += '\0';
}

std::string describe(const boost::system::error_code& ec) {
  // Asio's message for an OpenSSL error is its reason ("no start line",
  // "key values mismatch"); a missing file comes through as a system error.
  return ec.message();
}

bool load_pair(ssl::context& ctx, const std::string& cert, const std::string& key, std::string& error) {
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(cert, ec);
  if (ec) {
    error = fmt::format("certificate {}: {}", cert, describe(ec));
    return false;
  }
  ctx.use_private_key_file(key, ssl::context::pem, ec);
  if (ec && ec.category() == boost::asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
    error = fmt::format("private_key {} does not match certificate {}", key, cert);
    return false;
  }
  if (ec) {
    error = fmt::format("private_key {}: {}", key, describe(ec));
    return false;
  }
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    ERR_clear_error();
    error = fmt::format("private_key {} does not match certificate {}", key, cert);
    return false;
  }
  return true;
}

// ALPN: h2 when the client offers it (the server's preference, as Envoy's),
// else http/1.1; a client offering neither gets no ALPN answer.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
                void* arg) {
  const auto& config = *static_cast<const listener_tls_config*>(arg);
  for (std::string_view wanted : {std::string_view("h2"), std::string_view("http/1.1")}) {
    if (wanted == "h2" ? !config.alpn_h2 : !config.alpn_http1) continue;
    for (unsigned i = 0; i < inlen;) {
      unsigned len = in[i];
      if (i + 1 + len > inlen) break;
      if (len == wanted.size() && std::memcmp(in + i + 1, wanted.data(), len) == 0) {
        *out = in + i + 1;
        *outlen = static_cast<unsigned char>(len);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + len;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

bool name_matches(std::string_view pattern, std::string_view name) {
  auto lower_equal = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
        return false;
    return true;
  };
  if (pattern.size() > 2 && pattern.substr(0, 2) == "*.") {
    // One label only, as certificates' wildcards: "*.example.com" matches
    // "a.example.com", not "example.com" nor "a.b.example.com".
    auto dot = name.find('.');
    return dot != std::string_view::npos && dot > 0 && lower_equal(pattern.substr(1), name.substr(dot));
  }
  return lower_equal(pattern, name);
}

}  // namespace

std::string tls_files_fingerprint(const listener_tls_config& c) {
  std::string out;
  for (const auto& cert : c.certificates) {
    add_file(out, cert.certificate);
    add_file(out, cert.private_key);
  }
  add_file(out, c.client_ca);
  return out;
}

std::string tls_files_fingerprint(const cluster_tls_config& c) {
  std::string out;
  add_file(out, c.ca);
  add_file(out, c.certificate);
  add_file(out, c.private_key);
  return out;
}

server_tls::~server_tls() = default;

std::shared_ptr<const server_tls> server_tls::make(const listener_tls_config& config, std::string& error) {
  if (config.certificates.empty()) {
    error = "tls needs a certificate";
    return nullptr;
  }
  std::shared_ptr<server_tls> s(new server_tls());
  s->config_ = config;
  s->fingerprint_ = tls_files_fingerprint(config);
  for (const auto& cert : config.certificates) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_SINGLE_ECDH_USE);
    SSL_CTX_set_cipher_list(native, tls12_ciphers);
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
    static const unsigned char session_context[] = "vane";
    SSL_CTX_set_session_id_context(native, session_context, sizeof session_context - 1);
    SSL_CTX_set_alpn_select_cb(native, select_alpn, &s->config_);
    if (!load_pair(*ctx, cert.certificate, cert.private_key, error)) return nullptr;
    if (!config.client_ca.empty()) {
      boost::system::error_code ec;
      ctx->load_verify_file(config.client_ca, ec);
      if (ec) {
        error = fmt::format("client_ca {}: {}", config.client_ca, describe(ec));
        return nullptr;
      }
      int mode = SSL_VERIFY_PEER;
      if (config.require_client_certificate) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      SSL_CTX_set_verify(native, mode, nullptr);
      // The CA's subject is what the server names to clients as acceptable.
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.client_ca.c_str()))
        SSL_CTX_set_client_CA_list(native, names);
    }
    s->contexts_.push_back(std::move(ctx));
  }
  if (s->contexts_.size() > 1) {
    SSL_CTX* first = s->contexts_.front()->native_handle();
    SSL_CTX_set_tlsext_servername_callback(first, &server_tls::on_server_name);
    SSL_CTX_set_tlsext_servername_arg(first, s.get());
  }
  return s;
}

std::size_t server_tls::select(std::string_view server_name) const {
  // Exact names first, then wildcards, as nginx's server_name order.
  for (std::size_t i = 0; i < config_.certificates.size(); ++i)
    for (const auto& n : config_.certificates[i].server_names)
      if (n.rfind("*.", 0) != 0 && name_matches(n, server_name)) return i;
  for (std::size_t i = 0; i < config_.certificates.size(); ++i)
    for (const auto& n : config_.certificates[i].server_names)
      if (n.rfind("*.", 0) == 0 && name_matches(n, server_name)) return i;
  return 0;
}

int server_tls::on_server_name(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const server_tls*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  std::size_t i = self->select(name);
  if (i != 0) SSL_set_SSL_CTX(ssl, self->contexts_[i]->native_handle());
  return SSL_TLSEXT_ERR_OK;
}

std::shared_ptr<const client_tls> client_tls::make(const cluster_tls_config& config, std::string& error) {
  std::shared_ptr<client_tls> c(new client_tls());
  c->config_ = config;
  c->fingerprint_ = tls_files_fingerprint(config);
  c->context_ = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = c->context_->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_cipher_list(native, tls12_ciphers);
  static const unsigned char alpn_http1[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  static const unsigned char alpn_h2[] = {2, 'h', '2'};
  if (config.h2)
    SSL_CTX_set_alpn_protos(native, alpn_h2, sizeof alpn_h2);
  else
    SSL_CTX_set_alpn_protos(native, alpn_http1, sizeof alpn_http1);
  boost::system::error_code ec;
  if (config.verify) {
    if (!config.ca.empty()) {
      c->context_->load_verify_file(config.ca, ec);
      if (ec) {
        error = fmt::format("ca {}: {}", config.ca, describe(ec));
        return nullptr;
      }
    } else {
      c->context_->set_default_verify_paths(ec);
      if (ec) {
        error = fmt::format("system CA store: {}", describe(ec));
        return nullptr;
      }
    }
    c->context_->set_verify_mode(ssl::verify_peer);
  } else {
    c->context_->set_verify_mode(ssl::verify_none);
  }
  if (!config.certificate.empty() && !load_pair(*c->context_, config.certificate, config.private_key, error))
    return nullptr;
  return c;
}

bool client_tls::prepare(SSL* ssl, std::string_view host) const {
  std::string name = config_.sni.empty() ? std::string(host) : config_.sni;
  boost::system::error_code ec;
  auto ip = boost::asio::ip::make_address(name, ec);
  bool is_ip = !ec;
  bool ok = true;
  if (config_.verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (is_ip) {
      ok = X509_VERIFY_PARAM_set1_ip_asc(param, ip.to_string().c_str()) == 1;
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      ok = SSL_set1_host(ssl, name.c_str()) == 1;
    }
  }
  // SNI carries names only (RFC 6066 §3).
  if (!is_ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) ok = false;
  // Fail closed: a name that could not be set must not leave a handshake that checks the chain only.
  if (!ok && config_.verify) SSL_set_verify(ssl, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 0; });
  return ok;
}

std::shared_ptr<const server_tls> tls_cache::server(const listener_tls_config& config, std::string& error) {
  for (const auto& e : servers_)
    if (e.tls->config() == config) return e.tls;
  auto made = server_tls::make(config, error);
  if (made) servers_.push_back({made, {}});
  return made;
}

std::shared_ptr<const client_tls> tls_cache::client(const cluster_tls_config& config, std::string& error) {
  for (const auto& e : clients_)
    if (e.tls->config() == config) return e.tls;
  auto made = client_tls::make(config, error);
  if (made) clients_.push_back({made, {}});
  return made;
}

namespace {

// One step of refresh for either kind of entry.
template <typename Entry, typename Make>
bool refresh_entry(Entry& e, std::string_view what, Make make, tls_cache::refresh_result& result) {
  std::string now = tls_files_fingerprint(e.tls->config());
  if (now == e.tls->fingerprint() || now == e.refused) return false;
  std::string error;
  auto next = make(e.tls->config(), error);
  if (!next) {
    e.refused = now;
    ++result.refused;
    log::error("{}: the changed certificate files are refused ({}); keeping the ones loaded", what, error);
    return false;
  }
  e.tls = next;
  e.refused.clear();
  ++result.reloaded;
  return true;
}

}  // namespace

tls_cache::refresh_result tls_cache::refresh() {
  refresh_result result;
  for (auto& e : servers_) {
    const auto& first = e.tls->config().certificates.front().certificate;
    if (refresh_entry(e, fmt::format("tls ({})", first), &server_tls::make, result))
      log::info("tls: certificates reloaded ({} and {} more file{})", first,
                e.tls->config().certificates.size() * 2 - 1,
                e.tls->config().certificates.size() * 2 - 1 == 1 ? "" : "s");
  }
  for (auto& e : clients_) {
    std::string what =
        fmt::format("upstream tls ({})", e.tls->config().ca.empty() ? e.tls->config().certificate : e.tls->config().ca);
    if (refresh_entry(e, what, &client_tls::make, result)) log::info("{}: reloaded", what);
  }
  return result;
}

void tls_cache::retain(const proxy_config& c) {
  std::erase_if(servers_, [&](const server_entry& e) {
    for (const auto& l : c.listeners)
      if (l.tls && *l.tls == e.tls->config()) return false;
    return true;
  });
  std::erase_if(clients_, [&](const client_entry& e) {
    for (const auto& cl : c.clusters)
      if (cl.tls && *cl.tls == e.tls->config()) return false;
    return true;
  });
}

}  // namespace vane::proxy
