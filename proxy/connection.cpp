#include "proxy/connection.hpp"

#include <sys/socket.h>

#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include "common/log.hpp"
#include "proxy/http1/downstream.hpp"
#include "proxy/request_stream.hpp"
#include "proxy/stream.hpp"
#include "proxy/tls.hpp"
#include "proxy/worker.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
constexpr auto nothrow = task_nothrow;

task<void> serve_connection(worker& w, worker_socket socket, std::string listener_name, listener_stats* lstats) {
  proxy_stream client(std::move(socket));
  // The listener's TLS contexts as the current table has them: a certificate
  // rotation publishes a new table, and this connection keeps what it got.
  std::shared_ptr<const server_tls> tls;
  {
    const auto& policy = w.policy();  // no suspension in this block: a reference is enough
    std::size_t i = policy->table->find_listener(listener_name);
    if (i < policy->table->listeners.size()) tls = policy->table->listeners[i].tls;
  }
  struct registration {
    worker& w;
    std::list<worker::connection_entry>::iterator it;
    listener_stats* stats;
    ~registration() {
      w.unregister_connection(it);
      if (stats) stats->connections_active.add(-1);
    }
  } reg{w, w.register_connection(client.tcp()), lstats};  // counted in connections_active by the accept loop

  error_code ec;
  client.socket().set_option(tcp::no_delay(true), ec);
  std::string client_ip;
  if (auto ep = client.socket().remote_endpoint(ec); !ec) client_ip = ep.address().to_string();

  if (tls) {
    // Plain HTTP, garbage or a client that never finishes (handshake_timeout)
    // fails here: that connection is closed and counted, nothing else changes.
    auto& s = client.start_tls(tls->context());
    reg.it->stream = &client.tcp();
    client.expires_after(tls->config().handshake_timeout);
    auto [hec] = co_await s.async_handshake(asio::ssl::stream_base::server, nothrow);
    client.expires_never();
    if (hec) {
      if (lstats) lstats->tls_handshake_errors.add();
      log::debug("listener {}: TLS handshake with {} failed: {}", listener_name, client_ip, hec.message());
      co_return;
    }
  }
  beast::flat_buffer buffer;                         // the connection's read buffer
  std::shared_ptr<const route_table> indexed_table;  // held, so its address cannot be reused
  std::size_t listener_index = 0;
  std::uint32_t served_on_connection = 0;

  for (;;) {
    // The snapshot this request runs on, whatever is swapped in meanwhile.
    // A copy, not a reference: it pins the snapshot while the worker swaps in new ones.
    std::shared_ptr<worker_policy> policy = w.policy();  // NOLINT(performance-unnecessary-copy-initialization)
    const route_table& table = *policy->table;
    if (indexed_table.get() != &table) {
      listener_index = table.find_listener(listener_name);
      indexed_table = policy->table;
      if (listener_index == table.listeners.size()) co_return;  // the listener was removed by a reload
    }
    const limits_config& limits = table.limits;

    // Between requests the connection may idle for idle_timeout; once the
    // first byte arrived, the whole head must come within header_timeout.
    if (buffer.size() == 0) {
      client.expires_after(limits.idle_timeout);
      reg.it->idle = true;  // the end of a drain may cancel this read
      error_code rec = co_await read_some(client, buffer, 4096);
      reg.it->idle = false;
      if (rec == asio::error::operation_aborted && w.draining()) {
        // Cancelled by the drain: serve a request whose bytes are already here, else close.
        char byte;
        if (::recv(client.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) co_return;
        client.expires_after(limits.header_timeout);
        rec = co_await read_some(client, buffer, 4096);
      }
      if (rec) co_return;
    }
    reg.it->idle = false;
    // The request's scratch, from the worker, until the end of this iteration
    // (declared before all that points into it: the parser, the meter's views).
    struct scratch_lease {
      worker& w;
      std::unique_ptr<request_scratch> s;
      ~scratch_lease() { w.give_back(std::move(s)); }
    } scratch{w, w.take_scratch()};
    message_head& request = scratch.s->request;
    h1_parser<true> parser(request, scratch.s->request_pieces);
    request_meter meter(w.access_log());  // from the request's first byte here; ends before the parser
    meter.slot = policy->unrouted;
    h1_downstream ds(client, buffer, parser, scratch.s->out_head, meter, limits.idle_timeout);
    parser.header_limit(static_cast<std::uint32_t>(limits.max_request_headers));
    parser.body_limit(limits.max_body);
    client.expires_after(limits.header_timeout);
    const error_code hec = co_await read_head(client, buffer, parser, scratch.s->request_store);
    if (hec) {
      if (hec == http::error::end_of_stream || hec == http::error::partial_message ||
          hec == asio::error::connection_reset || hec == asio::error::eof)
        co_return;
      if (hec == beast::error::timeout) co_return;  // the deadline closed the socket: as nginx, no 408
      if (hec == http::error::header_limit) {
        co_await ds.reply(431, "request header too large\n", true);
      } else if (hec == http::error::body_limit) {
        co_await ds.reply(413, "request body too large\n", true);
      } else {
        log::debug("bad request from {}: {}", client_ip, hec.message());
        co_await ds.reply(400, "bad request\n", true);
      }
      client.socket().shutdown(tcp::socket::shutdown_both, ec);
      co_return;
    }

    // While draining, every response asks the client to close (and reconnect elsewhere).
    ++served_on_connection;
    ds.begin(parser.keep_alive() && !w.draining() &&
                 (limits.max_requests_per_connection == 0 || served_on_connection < limits.max_requests_per_connection),
             request.version);
    if (meter.log) {
      meter.method = request.method;
      meter.request_id = request.find("x-request-id").value_or(std::string_view{});
    }
    stream_request req;
    req.head = &request;
    req.client_ip = client_ip;
    req.scheme = tls ? "https" : "http";
    req.has_body = !parser.is_done();
    req.body_length_unknown = parser.chunked();
    if (const auto length = parser.content_length()) req.content_length = *length;
    req.expects_continue =
        request.version >= 11 && req.has_body &&
        beast::iequals(request.find(http::field::expect).value_or(std::string_view{}), "100-continue");
    struct shrink_when_done {  // a body's read room is handed back whatever way the request ends
      beast::flat_buffer* b;
      ~shrink_when_done() {
        if (b) shrink_after_body(*b);
      }
    } shrink{req.has_body ? &buffer : nullptr};
    const stream_context cx{w, policy, listener_index, *scratch.s, meter};
    if (!co_await run_stream(cx, req, ds)) co_return;
  }
}

}  // namespace vane::proxy
