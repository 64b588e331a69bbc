// libFuzzer: the request head path of vane-proxy on arbitrary bytes — the raw
// obs-fold check, the request parser as the proxy configures it (Beast's
// basic_parser keeping views), vane's own checks (Transfer-Encoding, Host),
// the A/B rule lookups a route runs on the parsed head (cookies, query,
// sticky key), the head written upstream and the body pieces. Nothing may
// crash, hang or read out of bounds (ASan/UBSan).
#include <boost/asio/buffer.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "filters/rules/rules.hpp"
#include "proxy/http1/head_out.hpp"
#include "proxy/http1/parser.hpp"
#include "proxy/http1/request_view.hpp"
#include "proxy/strict.hpp"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  if (vane::proxy::has_bad_line_break(raw)) return 0;
  vane::proxy::message_head head;
  std::vector<std::string_view> pieces;
  vane::proxy::h1_parser<true> p(head, pieces);
  p.header_limit(64 * 1024);
  p.body_limit(16 * 1024 * 1024);
  boost::system::error_code ec;
  const std::size_t used = p.put(boost::asio::buffer(data, size), ec);
  if (ec || !p.is_header_done()) return 0;
  std::string store(raw.substr(0, used));
  p.rebase(raw.data(), used, store.data());
  if (!vane::proxy::read_framing_fields(head).transfer_encoding_ok) return 0;
  const std::string_view host = head.find(http::field::host).value_or(std::string_view{});
  if (!vane::proxy::valid_host(host)) return 0;
  vane::proxy::head_request_view view(head, head.target, "10.0.0.1");
  for (std::string_view name : {"canary", "session", ""}) (void)vane::find_cookie(view, name);
  for (std::string_view name : {"variant", "a", ""}) (void)vane::find_query_param(head.target, name);
  (void)vane::sticky_point(head.find(http::field::user_agent).value_or(std::string_view{}));
  vane::proxy::forwarded_fields fw;
  fw.collect(head, "10.0.0.1", "http", true);
  std::string out;
  vane::proxy::write_request_head(head, {.target = head.target, .forwarded = &fw, .chunked = p.chunked()}, out);
  if (!p.is_done()) {
    p.eager(true);
    const std::string_view rest = raw.substr(used);
    p.put(boost::asio::buffer(rest.data(), rest.size()), ec);
    std::size_t total = 0;
    for (auto piece : pieces) total += piece.size();
    if (total > rest.size()) __builtin_trap();  // pieces are views into what was given
  }
  return 0;
}
