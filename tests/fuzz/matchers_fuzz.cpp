// libFuzzer: the A/B matchers (exact, prefix, suffix, RE2 regex, present) and
// the cookie and query lookups, on an arbitrary pattern and request: the
// input is "kind byte | pattern \0 cookie header \0 target".
#include <cstdint>
#include <string>

#include "filters/rules/rules.hpp"

namespace {

struct one_cookie_request : vane::request_view {
  std::string cookie, path;
  std::optional<std::string_view> header(std::string_view name) const override {
    if (name == "cookie") return std::string_view(cookie);
    return std::nullopt;
  }
  std::vector<std::string_view> headers(std::string_view name) const override {
    if (name == "cookie") return {cookie, cookie};
    return {};
  }
  std::string_view target() const override { return path; }
  std::string_view source_ip() const override { return "10.0.0.1"; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto kind = static_cast<vane::string_match_kind>(data[0] % 5);
  auto a = in.find('\0');
  std::string pattern = in.substr(0, a);
  one_cookie_request req;
  if (a != std::string::npos) {
    auto b = in.find('\0', a + 1);
    req.cookie = in.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
    if (b != std::string::npos) req.path = in.substr(b + 1);
  }
  std::string error;
  auto m = vane::string_matcher::make(kind, pattern, error);
  if (!m) return 0;
  vane::match_alternative alt;
  alt.all.push_back({vane::match_source::cookie, "canary", *m});
  alt.all.push_back({vane::match_source::query, "variant", *m});
  std::vector<vane::match_alternative> any{alt, {{{vane::match_source::header, "cookie", *m}}}};
  (void)vane::rule_holds(any, req);
  (void)m->matches(vane::find_cookie(req, pattern));
  (void)m->matches(vane::find_query_param(req.path, pattern));
  return 0;
}
