#include "tests/support/tls.hpp"

#include <openssl/x509.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <stdexcept>

#include "tests/support/fixtures.hpp"

namespace vane::test {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

void openssl(const std::vector<std::string>& args) {
  auto [code, output] = run("/usr/bin/openssl", args);
  if (code != 0) throw std::runtime_error("openssl " + args.front() + " failed: " + output);
}

}  // namespace

test_pki::test_pki(const std::string& name) : dir_(make_temp_dir()) {
  ca_crt_ = dir_ + "/ca.crt";
  ca_key_ = dir_ + "/ca.key";
  openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca_key_,
           "-out", ca_crt_, "-days", "2", "-subj", "/CN=" + name});
}

issued_cert test_pki::issue(const std::string& file_stem, const std::vector<std::string>& dns_names) {
  issued_cert c;
  std::string base = dir_ + "/" + file_stem;
  c.certificate = base + ".crt";
  c.private_key = base + ".key";
  std::string sans;
  for (const auto& n : dns_names) sans += "DNS:" + n + ",";
  sans += "IP:127.0.0.1";
  write_file(base + ".ext", "subjectAltName=" + sans + "\nextendedKeyUsage=serverAuth,clientAuth\n");
  openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", c.private_key,
           "-out", base + ".csr", "-subj", "/CN=" + (dns_names.empty() ? file_stem : dns_names.front())});
  openssl({"x509", "-req", "-in", base + ".csr", "-CA", ca_crt_, "-CAkey", ca_key_, "-CAcreateserial", "-out",
           c.certificate, "-days", "2", "-extfile", base + ".ext"});
  auto [code, out] = run("/usr/bin/openssl", {"x509", "-noout", "-serial", "-in", c.certificate});
  if (code != 0 || out.rfind("serial=", 0) != 0) throw std::runtime_error("openssl x509 -serial: " + out);
  c.serial = out.substr(7);
  while (!c.serial.empty() && (c.serial.back() == '\n' || c.serial.back() == '\r')) c.serial.pop_back();
  return c;
}

struct tls_client::impl {
  asio::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> stream;
  beast::flat_buffer buffer;
  std::uint16_t port = 0;
  bool open = false;
};

tls_client::tls_client(std::uint16_t port, const std::string& sni, const std::string& ca_file,
                       const std::string& certificate, const std::string& private_key)
    : tls_client(port, sni, ca_file, certificate, private_key, nullptr) {}

tls_client::tls_client(std::uint16_t port, const std::string& sni, const std::string& ca_file,
                       const tls_client& previous)
    : tls_client(port, sni, ca_file, "", "", SSL_get1_session(previous.impl_->stream->native_handle())) {}

bool tls_client::session_reused() const { return SSL_session_reused(impl_->stream->native_handle()) == 1; }

tls_client::tls_client(std::uint16_t port, const std::string& sni, const std::string& ca_file,
                       const std::string& certificate, const std::string& private_key, void* resume)
    : impl_(std::make_unique<impl>()) {
  auto& s = *impl_;
  s.port = port;
  s.ctx.load_verify_file(ca_file);
  s.ctx.set_verify_mode(ssl::verify_peer);
  if (!certificate.empty()) {
    s.ctx.use_certificate_chain_file(certificate);
    s.ctx.use_private_key_file(private_key, ssl::context::pem);
  }
  // An HTTP/1.1 client: it offers http/1.1 only (a server may prefer h2 when offered).
  static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(s.ctx.native_handle(), alpn, sizeof alpn);
  s.stream = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(s.ioc, s.ctx);
  if (!sni.empty()) SSL_set_tlsext_host_name(s.stream->native_handle(), sni.c_str());
  if (resume) {
    auto* session = static_cast<SSL_SESSION*>(resume);
    SSL_set_session(s.stream->native_handle(), session);
    SSL_SESSION_free(session);
  }
  auto& tcp_layer = beast::get_lowest_layer(*s.stream);
  tcp_layer.expires_after(std::chrono::seconds(30));
  tcp_layer.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  s.stream->handshake(ssl::stream_base::client);
  s.open = true;
}

tls_client::~tls_client() = default;

std::string tls_client::peer_serial() const {
  X509* cert = SSL_get1_peer_certificate(impl_->stream->native_handle());
  if (!cert) return {};
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string out(hex);
  OPENSSL_free(hex);
  BN_free(bn);
  X509_free(cert);
  return out;
}

std::string tls_client::peer_common_name() const {
  X509* cert = SSL_get1_peer_certificate(impl_->stream->native_handle());
  if (!cert) return {};
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  X509_free(cert);
  return cn;
}

std::string tls_client::protocol() const { return SSL_get_version(impl_->stream->native_handle()); }

std::string tls_client::alpn() const {
  const unsigned char* p = nullptr;
  unsigned n = 0;
  SSL_get0_alpn_selected(impl_->stream->native_handle(), &p, &n);
  return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

http_response tls_client::request(const std::string& method, const std::string& target, const std::string& body) {
  auto& s = *impl_;
  http_response out;
  if (!s.open) return out;
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(s.port));
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  beast::get_lowest_layer(*s.stream).expires_after(std::chrono::seconds(30));
  boost::system::error_code ec;
  http::write(*s.stream, req, ec);
  http::response<http::string_body> res;
  if (!ec) http::read(*s.stream, s.buffer, res, ec);
  if (ec) {
    s.open = false;
    return out;
  }
  out.status = res.result_int();
  for (const auto& f : res) {
    std::string name(f.name_string());
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    out.headers[name] = std::string(f.value());
  }
  out.body = res.body();
  out.keep_alive = res.keep_alive();
  if (!out.keep_alive) s.open = false;
  return out;
}

}  // namespace vane::test
