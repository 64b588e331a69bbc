#include "control/inject_webhook.hpp"

#include <boost/asio/awaitable.hpp>
#include <stdexcept>

#include "common/address.hpp"
#include "common/https_server.hpp"
#include "common/listen.hpp"
#include "common/log.hpp"
#include "control/admission.hpp"
#include "control/supervise.hpp"

namespace vane::control {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

inject_webhook::inject_webhook(const asio::any_io_executor& ex, inject_webhook_options options)
    : ex_(ex), options_(std::move(options)) {
  files_ = std::make_shared<tls_server_files>(options_.certificate, options_.private_key);
  std::string error;
  if (!files_->load(error)) throw std::runtime_error("--tls-cert/--tls-key: " + error);
  auto hp = parse_host_port(options_.address);
  if (!hp) throw std::runtime_error("--inject-webhook: '" + options_.address + "' is not HOST:PORT");
  boost::system::error_code ec;
  tcp::endpoint ep(asio::ip::make_address(hp->host, ec), hp->port);
  if (ec) throw std::runtime_error("--inject-webhook: '" + hp->host + "' is not an IP address");
  acceptor_.emplace(listen_on(ex_, ep, false, ec));
  if (ec) throw std::runtime_error("cannot listen on " + options_.address + ": " + ec.message());
  auto bound = acceptor_->local_endpoint();
  log::info("vane-control inject webhook listening on {}",
            host_port{bound.address().to_string(), bound.port()}.to_string());
}

inject_webhook::~inject_webhook() = default;

namespace {

asio::awaitable<http_server_reply> answer(const inject_options& options, http_server_request req) {
  std::string_view path = req.target.substr(0, req.target.find('?'));
  if (path == "/ready") {
    http_server_reply r;
    r.body = "{\"ready\":true}\n";
    co_return r;
  }
  if (path != "/inject") co_return http_error_reply(404, "no such path (POST /inject, GET /ready)");
  if (req.method != "POST") {
    auto r = http_error_reply(405, "POST an AdmissionReview to /inject");
    r.headers.emplace_back("Allow", "POST");
    co_return r;
  }
  auto result = review_admission(req.body, options);
  if (result.reply.status == 200)
    log::info("inject: {}", result.log_line);
  else
    log::warn("inject: {}", result.log_line);
  co_return std::move(result.reply);
}

}  // namespace

void inject_webhook::start() {
  supervised s;
  s.who = "inject webhook";
  s.start = [this]() -> asio::awaitable<void> {
    http_server_options o;
    o.server = "vane-control";
    o.log_name = "inject webhook";
    o.body_limit = 4 << 20;  // a Pod with many containers and env; the API server sends at most 3MiB objects
    o.timeout = std::chrono::seconds(10);
    const inject_options* inject = &options_.inject;
    return serve_https(
        *acceptor_, std::move(o), [inject](http_server_request req) { return answer(*inject, req); }, files_);
  };
  supervise(ex_, std::move(s));
}

}  // namespace vane::control
