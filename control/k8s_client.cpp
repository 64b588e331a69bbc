#include "control/k8s_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <memory>

#include "control/parse.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

std::string k8s_resource::path(std::string_view ns, std::string_view name, std::string_view subresource) const {
  std::string p = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (!ns.empty()) p += "/namespaces/" + std::string(ns);
  p += "/" + plural;
  if (!name.empty()) p += "/" + std::string(name);
  if (!subresource.empty()) p += "/" + std::string(subresource);
  return p;
}

namespace {

const json::object* metadata_of(const json::object& object) { return member_object(object, "metadata"); }

std::string metadata_text(const json::object& object, std::string_view key) {
  const auto* m = metadata_of(object);
  if (!m) return {};
  auto v = member_string(*m, key);
  return v ? std::string(*v) : std::string();
}

}  // namespace

std::string k8s_key(const json::object& object) {
  std::string ns = metadata_text(object, "namespace");
  std::string name = metadata_text(object, "name");
  return ns.empty() ? name : ns + "/" + name;
}

std::string k8s_resource_version(const json::object& object) { return metadata_text(object, "resourceVersion"); }

std::string k8s_answer_text(const http_result& answer) {
  if (answer.status == 0) return answer.error;
  std::string text = "HTTP " + std::to_string(answer.status);
  auto status = parse_json_object(answer.body);
  if (status) {
    auto message = member_string(*status.value, "message");
    auto reason = member_string(*status.value, "reason");
    if (reason) text += " " + std::string(*reason);
    if (message) return text + ": " + std::string(*message);
  }
  if (!answer.body.empty()) text += ": " + excerpt(answer.body);
  if (!answer.error.empty()) text += " (" + answer.error + ")";
  return text;
}

k8s_client::k8s_client(asio::any_io_executor ex, k8s_config config)
    : ex_(std::move(ex)), config_(std::move(config)), tokens_(config_) {}

k8s_client::~k8s_client() = default;

std::shared_ptr<k8s_client> k8s_client::make(asio::any_io_executor ex, k8s_config config, std::string& error) {
  std::shared_ptr<k8s_client> c(new k8s_client(std::move(ex), std::move(config)));
  auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  const k8s_config& k = c->config_;
  if (k.insecure_skip_tls_verify) {
    tls->set_verify_mode(asio::ssl::verify_none);
  } else {
    tls->set_verify_mode(asio::ssl::verify_peer);
    if (k.ca_pem.empty())
      tls->set_default_verify_paths(ec);
    else
      tls->add_certificate_authority(asio::buffer(k.ca_pem), ec);
    if (ec) {
      error = "the cluster's CA does not load: " + ec.message();
      return nullptr;
    }
  }
  if (!k.client_certificate_pem.empty()) {
    tls->use_certificate_chain(asio::buffer(k.client_certificate_pem), ec);
    if (!ec) tls->use_private_key(asio::buffer(k.client_key_pem), asio::ssl::context::pem, ec);
    if (ec) {
      error = "the client certificate and key do not load: " + ec.message();
      return nullptr;
    }
  }
  c->tls_ = std::move(tls);
  return c;
}

asio::awaitable<http_result> k8s_client::call(std::string method, std::string target, std::string body,
                                              std::string content_type) {
  http_request_spec spec;
  spec.method = std::move(method);
  spec.target = std::move(target);
  spec.body = std::move(body);
  if (!content_type.empty()) spec.headers.emplace_back("Content-Type", std::move(content_type));
  return send(std::move(spec), false, {}, {});
}

asio::awaitable<http_result> k8s_client::stream(std::string target, duration idle_timeout, http_body_sink on_data) {
  http_request_spec spec;
  spec.target = std::move(target);
  return send(std::move(spec), true, idle_timeout, std::move(on_data));
}

asio::awaitable<http_result> k8s_client::send(http_request_spec spec, bool streamed, duration idle_timeout,
                                              http_body_sink on_data) {
  spec.target = config_.base_path + spec.target;
  spec.user_agent = "vane-control";
  spec.headers.emplace_back("Accept", "application/json");
  const std::string& token = tokens_.token(k8s_token_source::clock::now());
  if (!token.empty()) spec.headers.emplace_back("Authorization", "Bearer " + token);
  // The call's timeout covers the name's lookup too: a leader's renewal must not outlast its lease in a
  // stalled resolver. A getaddrinfo under way cannot be cancelled, so the call does not wait for it past
  // the deadline: the lookup's answer lands in shared state, and a timer wakes the call at the deadline
  // or when the answer came, whichever is first.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  struct lookup {
    explicit lookup(const asio::any_io_executor& ex, std::chrono::steady_clock::time_point at)
        : resolver(ex), wake(ex, at) {}
    tcp::resolver resolver;
    asio::steady_timer wake;
    bool done = false;
    boost::system::error_code ec;
    tcp::resolver::results_type results;
  };
  auto l = std::make_shared<lookup>(ex_, deadline);
  l->resolver.async_resolve(config_.host, config_.port,
                            [l](boost::system::error_code ec, tcp::resolver::results_type results) {
                              l->done = true;
                              l->ec = ec;
                              l->results = std::move(results);
                              l->wake.cancel();
                            });
  if (!l->done) co_await l->wake.async_wait(nothrow);
  if (!l->done) l->resolver.cancel();  // (a lookup still queued is skipped; one under way ends unheard)
  if (!l->done || l->ec || l->results.empty()) {
    http_result out;
    out.error = "cannot resolve " + config_.host + ": " +
                (!l->done ? std::string("timed out")
                 : l->ec  ? l->ec.message()
                          : "no address");
    co_return out;
  }
  const auto& results = l->results;
  spec.timeout = std::chrono::duration_cast<duration>(deadline - std::chrono::steady_clock::now());
  if (spec.timeout <= duration::zero()) spec.timeout = duration(1);
  const tcp::endpoint endpoint = results.begin()->endpoint();
  // The name the certificate must carry: tls-server-name, else the host (an IP SAN for an address).
  std::string name = config_.tls_server_name.empty() ? config_.host : config_.tls_server_name;
  bool verify = !config_.insecure_skip_tls_verify;
  tls_prepare prepare = [name, verify](SSL* ssl) {
    boost::system::error_code ec;
    auto ip = asio::ip::make_address(name, ec);
    if (ec) SSL_set_tlsext_host_name(ssl, name.c_str());  // SNI carries names only (RFC 6066 §3)
    if (!verify) return;
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (!ec) {
      X509_VERIFY_PARAM_set1_ip_asc(param, ip.to_string().c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(ssl, name.c_str());
    }
  };
  if (streamed) {
    http_result out = co_await https_stream(ex_, endpoint, *tls_, std::move(prepare), std::move(spec), idle_timeout,
                                            std::move(on_data));
    co_return out;
  }
  http_result out = co_await https_fetch(ex_, endpoint, *tls_, std::move(prepare), std::move(spec));
  co_return out;
}

asio::awaitable<k8s_update_result> k8s_update(k8s_client& client, std::string target,
                                              std::function<bool(json::object&)> change, int attempts) {
  k8s_update_result result;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    result.answer = co_await client.call("GET", target);
    if (result.answer.status != 200) co_return result;
    auto object = parse_json_object(result.answer.body);
    if (!object) {
      result.answer.error = "the object read is " + object.why;
      co_return result;
    }
    // The resourceVersion read stays in the object: the PUT is refused with 409 if it is no longer current.
    if (!change(*object.value)) co_return result;
    ++result.tries;
    result.answer = co_await client.call("PUT", target, json::serialize(*object.value));
    if (result.answer.status != 409) {
      result.written = result.answer.status / 100 == 2;
      co_return result;
    }
  }
  co_return result;
}

}  // namespace vane::control
