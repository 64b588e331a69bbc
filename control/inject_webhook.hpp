#pragma once
// The admission webhook's server (`vane-control --inject-webhook ADDRESS
// --tls-cert FILE --tls-key FILE`): HTTPS, POST /inject answers an
// AdmissionReview (control/admission.hpp), GET /ready says it serves (for
// the Deployment's probes). The certificate and key are read again when the
// kubelet swaps the mounted Secret (common/https_server.hpp). Runs on the
// executor it is given: alone, or beside the controller on its io_context.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <optional>
#include <string>

#include "control/inject.hpp"

namespace vane {
class tls_server_files;
}

namespace vane::control {

struct inject_webhook_options {
  std::string address;  // HOST:PORT to listen on (port 0: the OS chooses)
  std::string certificate, private_key;
  inject_options inject;  // its `all` is not needed: every pod sent is injected unless disabled
};

class inject_webhook {
 public:
  // Loads the certificate and binds; throws std::runtime_error saying which failed.
  inject_webhook(const boost::asio::any_io_executor& ex, inject_webhook_options options);
  ~inject_webhook();
  // Serves (supervised: restarted after an exception) until the executor's context stops.
  void start();
  boost::asio::ip::tcp::endpoint endpoint() const { return acceptor_->local_endpoint(); }

 private:
  boost::asio::any_io_executor ex_;
  inject_webhook_options options_;
  std::shared_ptr<tls_server_files> files_;
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
};

}  // namespace vane::control
