// libFuzzer: the request head path of vane-proxy on arbitrary bytes — the raw
// obs-fold check, Beast's request parser as the proxy configures it, then
// vane's own checks (Transfer-Encoding, Host) and the A/B rule lookups a
// route runs on the parsed head (cookies, query, sticky key). Nothing may
// crash, hang or read out of bounds (ASan/UBSan).
#include <boost/beast/http.hpp>
#include <cstdint>
#include <string_view>

#include "filters/rules/rules.hpp"
#include "proxy/strict.hpp"

namespace http = boost::beast::http;

namespace {

struct beast_view : vane::request_view {
  const http::request<http::buffer_body>& req;
  explicit beast_view(const http::request<http::buffer_body>& r) : req(r) {}
  std::optional<std::string_view> header(std::string_view name) const override {
    auto it = req.find(name);
    if (it == req.end()) return std::nullopt;
    return std::string_view(it->value());
  }
  std::vector<std::string_view> headers(std::string_view name) const override {
    std::vector<std::string_view> out;
    for (auto [b, e] = req.equal_range(name); b != e; ++b) out.emplace_back(b->value());
    return out;
  }
  std::string_view target() const override { return req.target(); }
  std::string_view source_ip() const override { return "10.0.0.1"; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  if (vane::proxy::has_bad_line_break(raw)) return 0;
  http::request_parser<http::buffer_body> p;
  p.header_limit(64 * 1024);
  p.body_limit(16 * 1024 * 1024);
  boost::system::error_code ec;
  p.put(boost::asio::buffer(data, size), ec);
  if (ec || !p.is_header_done()) return 0;
  const auto& req = p.get();
  if (!vane::proxy::acceptable_request_transfer_encoding(req, req.version())) return 0;
  if (!vane::proxy::valid_host(req[http::field::host])) return 0;
  beast_view view(req);
  for (std::string_view name : {"canary", "session", ""}) (void)vane::find_cookie(view, name);
  for (std::string_view name : {"variant", "a", ""}) (void)vane::find_query_param(req.target(), name);
  (void)vane::sticky_point(req[http::field::user_agent]);
  return 0;
}
