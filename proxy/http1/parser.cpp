#include "proxy/http1/parser.hpp"

namespace vane::proxy {

namespace http = boost::beast::http;

std::optional<std::string_view> message_head::find(std::string_view name) const noexcept {
  for (const auto& f : fields)
    if (boost::beast::iequals(f.name, name)) return f.value;
  return std::nullopt;
}

std::optional<std::string_view> message_head::find(http::field id) const noexcept {
  for (const auto& f : fields)
    if (f.id == id) return f.value;
  return std::nullopt;
}

std::size_t message_head::count(http::field id) const noexcept {
  std::size_t n = 0;
  for (const auto& f : fields) n += f.id == id;
  return n;
}

template <bool isRequest>
void h1_parser<isRequest>::rebase(const char* from, std::size_t n, const char* to) noexcept {
  // Compared as addresses: `from` may be memory already handed back.
  const auto begin = reinterpret_cast<std::uintptr_t>(from);
  const auto move = [&](std::string_view& v) {
    const auto at = reinterpret_cast<std::uintptr_t>(v.data());
    if (at >= begin && at < begin + n) v = std::string_view(to + (at - begin), v.size());
  };
  move(head_.method);
  move(head_.target);
  move(head_.reason);
  for (auto& f : head_.fields) {
    move(f.name);
    move(f.value);
  }
}

template <bool isRequest>
void h1_parser<isRequest>::on_request_impl(http::verb, string_view method, string_view target, int version,
                                           error_code&) {
  head_.method = std::string_view(method.data(), method.size());
  head_.target = std::string_view(target.data(), target.size());
  head_.version = static_cast<unsigned>(version);
}

template <bool isRequest>
void h1_parser<isRequest>::on_response_impl(int code, string_view reason, int version, error_code&) {
  head_.status = static_cast<unsigned>(code);
  head_.reason = std::string_view(reason.data(), reason.size());
  head_.version = static_cast<unsigned>(version);
}

template <bool isRequest>
void h1_parser<isRequest>::on_field_impl(http::field id, string_view name, string_view value, error_code&) {
  if (this->is_header_done()) return;  // a trailer field: dropped
  head_.fields.push_back(
      {id, std::string_view(name.data(), name.size()), std::string_view(value.data(), value.size())});
}

template <bool isRequest>
std::size_t h1_parser<isRequest>::on_body_impl(string_view body, error_code&) {
  if (!body.empty()) pieces_.emplace_back(body.data(), body.size());
  return body.size();
}

template <bool isRequest>
std::size_t h1_parser<isRequest>::on_chunk_body_impl(std::uint64_t, string_view body, error_code&) {
  if (!body.empty()) pieces_.emplace_back(body.data(), body.size());
  return body.size();
}

template class h1_parser<true>;
template class h1_parser<false>;

}  // namespace vane::proxy
