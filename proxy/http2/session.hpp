#pragma once
// HTTP/2 downstream (RFC 9113) on nghttp2: one connection's frames in and
// out, each request stream handed to run_stream() (proxy/request_stream.hpp)
// through the same codec-neutral interface as HTTP/1.1 (proxy/exchange.hpp),
// so every routing decision, fault, retry, mirror and metric works on a
// stream exactly as on an HTTP/1.1 request. Upstreams are HTTP/1.1 here.
//
// nghttp2 does the framing, HPACK and the protocol's state machine (and its
// flood and rapid-reset limits); we write only what no library does: the
// connection loop on the worker, flow control tied to what the stream has
// relayed (no automatic WINDOW_UPDATE: a window opens as the upstream takes
// the body), and the translation of heads.
#include <boost/beast/core/flat_buffer.hpp>
#include <string>
#include <string_view>

#include "proxy/executor.hpp"
#include "proxy/stats.hpp"
#include "proxy/stream.hpp"
#include "proxy/worker.hpp"

namespace vane::proxy {

// The client connection preface (RFC 9113 §3.4): a plain connection that
// starts with it speaks HTTP/2 with prior knowledge (h2c).
inline constexpr std::string_view h2_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// True when `bytes` (the first received) may be the preface: they match its start.
constexpr bool maybe_h2_preface(std::string_view bytes) noexcept {
  const std::size_t n = bytes.size() < h2_preface.size() ? bytes.size() : h2_preface.size();
  return n > 0 && bytes.substr(0, n) == h2_preface.substr(0, n);
}

// Serves an HTTP/2 connection until it closes. `received`: what was read
// already (the preface, maybe more). The listener is named, as for HTTP/1.1.
// `entry` is the connection's place in the worker's list: idle while no
// stream runs, so that a drain's end closes it. While the worker drains,
// the connection says GOAWAY (NO_ERROR, the last stream it took) as soon as
// it has no stream running, or when its streams end, then closes.
// `stats`: the listener's (streams active, protocol errors), or null.
task<void> serve_h2(worker& w, proxy_stream& client, boost::beast::flat_buffer& received, const std::string& listener,
                    std::string_view client_ip, bool tls, worker::connection_entry& entry, listener_stats* stats);

}  // namespace vane::proxy
