#include "proxy/head_writer.hpp"

namespace vane::proxy {

namespace http = boost::beast::http;

namespace {

void version(unsigned v, std::string& out) {
  const char text[8] = {
      'H', 'T', 'T', 'P', '/', static_cast<char>('0' + v / 10 % 10), '.', static_cast<char>('0' + v % 10)};
  out.append(text, sizeof text);
}

void fields(const http::fields& f, std::string& out, std::string_view extra = {}) {
  for (const auto& field : f) {
    const auto name = field.name_string();
    const auto value = field.value();
    out.append(name.data(), name.size()).append(": ", 2).append(value.data(), value.size()).append("\r\n", 2);
  }
  out.append(extra.data(), extra.size()).append("\r\n", 2);
}

}  // namespace

void write_head(const http::request_header<>& h, std::string& out, std::string_view extra) {
  out.clear();
  const auto method = h.method_string();
  const auto target = h.target();
  out.append(method.data(), method.size()).append(" ", 1).append(target.data(), target.size()).append(" ", 1);
  version(h.version(), out);
  out.append("\r\n", 2);
  fields(h, out, extra);
}

void write_head(const http::response_header<>& h, std::string& out) {
  out.clear();
  version(h.version(), out);
  const unsigned code = h.result_int();
  const char status[5] = {' ', static_cast<char>('0' + code / 100 % 10), static_cast<char>('0' + code / 10 % 10),
                          static_cast<char>('0' + code % 10), ' '};
  out.append(status, sizeof status);
  const auto reason = h.reason();
  out.append(reason.data(), reason.size()).append("\r\n", 2);
  fields(h, out);
}

}  // namespace vane::proxy
