#include "proxy/connection.hpp"

#include <sys/socket.h>

#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include "common/log.hpp"
#include "proxy/http1/downstream.hpp"
#include "proxy/http2/session.hpp"
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

namespace {

// Plain HTTP, garbage or a client that never finishes (handshake_timeout)
// fails here: that connection is closed and counted, nothing else changes.
task<bool> tls_handshake(proxy_stream& client, const server_tls& tls, worker::connection_entry& entry,
                         listener_stats* stats, std::string_view listener, std::string_view client_ip) {
  auto& s = client.start_tls(tls.context());
  entry.stream = &client.tcp();
  client.expires_after(tls.config().handshake_timeout);
  auto [ec] = co_await s.async_handshake(asio::ssl::stream_base::server, nothrow);
  client.expires_never();
  if (!ec) co_return true;
  if (stats) stats->tls_handshake_errors.add();
  log::debug("listener {}: TLS handshake with {} failed: {}", listener, client_ip, ec.message());
  co_return false;
}

// A head that could not be read: the client went away or was too slow
// (closed, as nginx does, with no 408), or it gets a 4xx and the connection closes.
task<void> refuse_head(h1_downstream& ds, proxy_stream& client, error_code ec, std::string_view client_ip) {
  if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == asio::error::connection_reset ||
      ec == asio::error::eof || ec == beast::error::timeout)
    co_return;
  if (ec == http::error::header_limit) {
    co_await ds.reply(431, "request header too large\n", true);
  } else if (ec == http::error::body_limit) {
    co_await ds.reply(413, "request body too large\n", true);
  } else {
    log::debug("bad request from {}: {}", client_ip, ec.message());
    co_await ds.reply(400, "bad request\n", true);
  }
  client.socket().shutdown(tcp::socket::shutdown_both, ec);
}

// The client chose h2 by ALPN in the TLS handshake.
bool negotiated_h2(proxy_stream& client) {
  const unsigned char* proto = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(client.tls()->native_handle(), &proto, &len);
  return len == 2 && proto[0] == 'h' && proto[1] == '2';
}

// What the stream needs to know of an HTTP/1.x request beyond its head.
stream_request describe(const h1_parser<true>& parser, const message_head& request, std::string_view client_ip,
                        bool tls) {
  stream_request req;
  req.head = &request;
  req.client_ip = client_ip;
  req.scheme = tls ? "https" : "http";
  req.has_body = !parser.is_done();
  req.body_length_unknown = parser.chunked();
  if (const auto length = parser.content_length()) req.content_length = *length;
  req.expects_continue = request.version >= 11 && req.has_body &&
                         beast::iequals(request.find(http::field::expect).value_or(std::string_view{}), "100-continue");
  return req;
}

}  // namespace

task<void> serve_connection(worker& w, worker_socket socket, std::string listener_name, listener_stats* lstats) {
  proxy_stream client(std::move(socket));
  // The listener's TLS contexts as the current table has them: a certificate
  // rotation publishes a new table, and this connection keeps what it got.
  std::shared_ptr<const server_tls> tls;
  bool http1 = true, h2 = true;  // the listener's protocols
  {
    const auto& policy = w.policy();  // no suspension in this block: a reference is enough
    std::size_t i = policy->table->find_listener(listener_name);
    if (i < policy->table->listeners.size()) {
      const compiled_listener& l = policy->table->listeners[i];
      tls = l.tls;
      http1 = l.http1;
      h2 = l.h2;
    }
  }
  const worker::registration reg(w, client.tcp(), lstats);

  error_code ec;
  client.socket().set_option(tcp::no_delay(true), ec);
  enable_read_hints(client.socket());  // (refused: the reads try at once, proxy/short_read.hpp)
  std::string client_ip;
  if (auto ep = client.socket().remote_endpoint(ec); !ec) client_ip = ep.address().to_string();

  if (tls && !co_await tls_handshake(client, *tls, *reg.it, lstats, listener_name, client_ip)) co_return;
  beast::flat_buffer buffer;           // the connection's read buffer
  if (tls && negotiated_h2(client)) {  // (ALPN offers h2 only where the listener speaks it)
    co_await serve_h2(w, client, buffer, listener_name, client_ip, true, *reg.it, lstats);
    co_return;
  }
  if (tls && !http1) co_return;                      // an h2-only listener: a client that did not choose h2 is closed
  std::shared_ptr<const route_table> indexed_table;  // held, so its address cannot be reused
  std::size_t listener_index = 0;
  // Finds this connection's listener in `table` when it is not the table
  // indexed last; false when a reload removed the listener.
  const auto index_listener = [&](const std::shared_ptr<const route_table>& table) {
    if (table != indexed_table) {
      listener_index = table->find_listener(listener_name);
      indexed_table = table;
    }
    return listener_index < table->listeners.size();
  };
  std::uint32_t served_on_connection = 0;

  for (;;) {
    // Between requests the connection may idle for idle_timeout; once the
    // first byte arrived, the whole head must come within header_timeout.
    // (The limits of the snapshot current when each wait starts; the request
    // itself runs on the one current when its first byte is here, below.)
    if (buffer.size() == 0) {
      // (A listener removed by a reload: an idle connection is closed before its next request.)
      if (!index_listener(w.policy()->table)) co_return;
      client.expires_after(indexed_table->limits.idle_timeout);
      reg.it->idle = true;  // the end of a drain may cancel this read
      error_code rec = co_await read_some(client, buffer, 4096);
      reg.it->idle = false;
      if (rec == asio::error::operation_aborted && w.draining()) {
        // Cancelled by the drain: serve a request whose bytes are already here, else close.
        char byte;
        if (::recv(client.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) co_return;
        client.expires_after(w.policy()->table->limits.header_timeout);
        rec = co_await read_some(client, buffer, 4096);
      }
      if (rec) co_return;
      if (served_on_connection == 0 && !tls) {
        const bool preface = maybe_h2_preface({static_cast<const char*>(buffer.data().data()), buffer.size()});
        if (preface && h2) {
          // HTTP/2 with prior knowledge (h2c), known by its preface, as Envoy's AUTO codec does.
          co_await serve_h2(w, client, buffer, listener_name, client_ip, false, *reg.it, lstats);
          co_return;
        }
        if (!http1) {  // an h2-only listener: what is not HTTP/2 is closed (as Envoy's HTTP/2 codec does)
          log::debug("listener {}: {} did not start with the HTTP/2 preface", listener_name, client_ip);
          co_return;
        }
      }
    }
    reg.it->idle = false;
    // The snapshot this request runs on, whatever is swapped in meanwhile:
    // taken once its first byte is here, so a request that comes after a
    // reload or a traffic PUT follows it even on a connection that was idle
    // before. A copy, not a reference: it pins the snapshot while the worker
    // swaps in new ones.
    std::shared_ptr<worker_policy> policy = w.policy();  // NOLINT(performance-unnecessary-copy-initialization)
    const route_table& table = *policy->table;
    if (!index_listener(policy->table)) co_return;  // the listener was removed by a reload
    const limits_config& limits = table.limits;
    // The request's scratch, until the end of this iteration (declared
    // before all that points into it: the parser, the meter's views).
    const worker::scratch_lease scratch(w);
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
      co_await refuse_head(ds, client, hec, client_ip);
      co_return;
    }

    // While draining, every response asks the client to close (and reconnect elsewhere).
    ++served_on_connection;
    ds.begin(parser.keep_alive() && !w.draining() &&
                 (limits.max_requests_per_connection == 0 || served_on_connection < limits.max_requests_per_connection),
             request.version);
    if (meter.log) {
      meter.version = request.version;
      meter.method = request.method;
      meter.request_id = request.find("x-request-id").value_or(std::string_view{});
    }
    const stream_request req = describe(parser, request, client_ip, tls != nullptr);
    const shrink_when_done shrink(req.has_body ? &buffer : nullptr);  // a body's read room is handed back
    const stream_context cx{w, policy, listener_index, *scratch.s, meter};
    if (!co_await run_stream(cx, req, ds)) co_return;
  }
}

}  // namespace vane::proxy
