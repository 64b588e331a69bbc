#include "proxy/upstream_attempt.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include "proxy/coarse_clock.hpp"
#include "proxy/strict.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

failure_reply reply_for(acquire_error e) {
  switch (e) {
    case acquire_error::overflow:
      return {503, "upstream overflow\n"};
    case acquire_error::connect_timeout:
      return {504, "upstream connect timeout\n"};
    case acquire_error::pending_timeout:
      return {504, "upstream request timeout\n"};
    case acquire_error::no_healthy:
      return {503, "no healthy upstream\n"};
    case acquire_error::tls_failed:
      return {502, "upstream TLS handshake failed\n"};
    case acquire_error::connect_failed:
    case acquire_error::none:
      break;
  }
  return {502, "upstream connect error\n"};
}

task<boost::system::error_code> read_final_head(proxy_stream& stream, beast::flat_buffer& buffer,
                                                std::optional<h1_parser<false>>& response, message_head& head,
                                                std::vector<std::string_view>& pieces, std::string& store,
                                                duration timeout, std::optional<std::uint32_t> header_limit,
                                                bool head_request, bool& interim) {
  const auto final_by = coarse_now() + timeout;
  interim = false;
  for (;;) {
    response.emplace(head, pieces);
    if (header_limit) response->header_limit(*header_limit);
    response->body_limit(boost::none);
    if (head_request) response->skip(true);
    const auto left = interim ? final_by - coarse_now() : std::chrono::steady_clock::duration(timeout);
    if (left <= std::chrono::steady_clock::duration::zero()) co_return beast::error::timeout;
    stream.expires_after(left);
    const boost::system::error_code rec = co_await read_head(stream, buffer, *response, store);
    if (rec) co_return rec;
    const unsigned code = head.status;
    if (code < 100 || code >= 200 || code == 101) co_return rec;
    interim = true;
  }
}

task<attempt_result> attempt_upstream(upstream_pool& pool, const attempt_request& request, std::optional<h1_sink>& sink,
                                      std::optional<h1_parser<false>>& response, message_head& head,
                                      std::vector<std::string_view>& pieces, std::string& store) {
  attempt_result result;
  std::size_t endpoint = 0;
  std::optional<lease> now = pool.try_acquire(endpoint, request.fresh_only);
  lease conn;
  if (now)
    conn = std::move(*now);
  else
    conn = co_await pool.acquire_new(endpoint, request.deadline);
  if (conn.error != acquire_error::none) {
    result.acquire = conn.error;
    co_return result;
  }
  result.endpoint = conn.conn->endpoint;
  // The head goes out with the body's first batch in one write, then the
  // rest of the body batch by batch.
  h1_sink& up = sink.emplace(conn.conn->stream, request.io_timeout, request.bytes, request.tee);
  up.set_head(request.head, request.chunked);
  const relay_progress progress = relay_now(*request.body, up);
  relay_status sent = progress.status.value_or(relay_status::ok);
  if (!progress.status) sent = co_await relay(*request.body, up, progress);
  if (sent == relay_status::write_failed && up.head_out() && answer_waiting(*conn.conn)) {
    // The upstream answered before the request's end and stopped reading it (a 413 or a 401 to an
    // upload, then a close or a reset): that answer is the attempt's, as Envoy's; the connection,
    // with part of a request in it, is never reused. (Only once our head went out whole: bytes before
    // that, such as a 408 an idle connection got as it closed, answer no request of ours.)
    result.cut_short = true;
  } else if (sent != relay_status::ok) {
    pool.release(std::move(conn.conn), false);  // it has part of a request: never reused
    if (sent == relay_status::write_failed) {
      result.end = attempt_end::write_failed;
      result.stale = conn.reused;
    } else {
      result.end = attempt_end::client_failed;
      result.body = sent;
    }
    co_return result;
  }
  // As Envoy's route timeout: counted from the end of the request, so that a
  // long upload does not eat the upstream's time to answer.
  bool interim = false;  // a 1xx came first
  boost::system::error_code rec =
      co_await read_final_head(conn.conn->stream, conn.conn->buffer, response, head, pieces, store, request.try_timeout,
                               request.header_limit, request.head_request, interim);
  // A final answer framed in a way the client could read differently is malformed, as a bad head is (a 502,
  // the connection closed, counted once): a status below 100, a coding other than chunked or any on HTTP/1.0,
  // a repeated or listed Content-Length (as nginx).
  if (!rec && head.status < 100) rec = http::error::bad_status;
  if (!rec) {
    const framing_fields framing = read_framing_fields(head);
    if (!framing.transfer_encoding_ok)
      rec = http::error::bad_transfer_encoding;
    else if (!framing.single_content_length)
      rec = http::error::bad_content_length;
  }
  if (!rec) {
    result.end = attempt_end::response;
    result.conn = std::move(conn);
    co_return result;
  }
  // Stale: the reused connection ended before any byte of an answer (else the upstream was answering).
  const bool nothing_received = !interim && conn.conn->buffer.size() == 0;
  pool.release(std::move(conn.conn), false);
  response.reset();
  if (result.cut_short) {
    result.end = attempt_end::write_failed;
    result.stale = conn.reused && nothing_received;  // (a TLS close_notify is no answer)
  } else if (rec == beast::error::timeout) {
    result.end = attempt_end::timeout;
  } else {
    result.end = attempt_end::read_failed;
    result.stale =
        conn.reused && nothing_received && (rec == http::error::end_of_stream || rec == asio::error::connection_reset);
  }
  co_return result;
}

}  // namespace vane::proxy
