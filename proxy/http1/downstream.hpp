#pragma once
// The client's side of one HTTP/1.x request, as a stream sees it
// (proxy/exchange.hpp): its body read from the connection's buffer, local
// replies, 100 Continue, and the response re-framed for the client's version
// and the connection's keep-alive.
#include <boost/beast/core/flat_buffer.hpp>
#include <string>

#include "proxy/exchange.hpp"
#include "proxy/http1/io.hpp"
#include "proxy/request_meter.hpp"

namespace vane::proxy {

class h1_downstream final : public downstream {
 public:
  // `out_head`: the buffer the response head (or a local reply) is written into.
  h1_downstream(proxy_stream& client, boost::beast::flat_buffer& buffer, h1_parser<true>& parser, std::string& out_head,
                request_meter& meter, duration io_timeout)
      : client_(client),
        out_head_(out_head),
        meter_(meter),
        io_timeout_(io_timeout),
        body_(parser, client, buffer, io_timeout),
        sink_(client, io_timeout, &meter.bytes_sent) {}

  // Once the head is read: whether the connection may serve another
  // request after this one, and the client's HTTP version (10, 11).
  void begin(bool keep_alive, unsigned client_version) {
    keep_alive_ = keep_alive;
    version_ = client_version;
  }

  body_source& request_body() override { return body_; }
  task<bool> send_continue() override;
  task<bool> reply(unsigned status, std::string_view body, bool close) override;
  void close_after() override { keep_alive_ = false; }
  body_sink& respond(const message_head& head, const response_shape& shape) override;
  bool end_response(relay_status status) override;

 private:
  proxy_stream& client_;
  std::string& out_head_;
  request_meter& meter_;
  duration io_timeout_;
  h1_source<true> body_;
  h1_sink sink_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
};

}  // namespace vane::proxy
