#include "proxy/http1/downstream.hpp"

#include "proxy/http1/head_out.hpp"

namespace vane::proxy {

task<bool> h1_downstream::send_continue() {
  static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
  client_.expires_after(io_timeout_);
  if (co_await write_all(client_, continue_line)) {
    meter_.code = 499;
    co_return false;
  }
  co_return true;
}

task<bool> h1_downstream::reply(unsigned status, std::string_view body, bool close) {
  if (close) keep_alive_ = false;
  write_local_reply(status, body, connection_for(keep_alive_, version_), out_head_);
  client_.expires_after(io_timeout_);
  const auto ec = co_await write_all(client_, out_head_);
  meter_.code = ec ? 499 : status;
  co_return !ec && keep_alive_;
}

body_sink& h1_downstream::respond(const message_head& head, const response_shape& shape) {
  bool chunked = shape.chunked && !shape.no_body;  // HEAD, 204, 304: no body, whatever the framing said
  if (shape.close_delimited) {
    // The upstream ends its body by closing: re-frame it as chunked for an
    // HTTP/1.1 client; an HTTP/1.0 client gets it the same way, then close.
    if (version_ >= 11)
      chunked = true;
    else
      keep_alive_ = false;
  }
  if (chunked && version_ < 11) {  // HTTP/1.0 has no chunked: the end of the connection ends the body
    chunked = false;
    keep_alive_ = false;
  }
  write_response_head(head, {shape.ops, shape.cookies, chunked, connection_for(keep_alive_, version_)}, out_head_);
  sink_.set_head(out_head_, chunked);
  return sink_;
}

bool h1_downstream::end_response(relay_status status) {
  if (status != relay_status::ok) return false;
  if (!keep_alive_) {
    boost::system::error_code ec;
    client_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
    return false;
  }
  return true;
}

}  // namespace vane::proxy
