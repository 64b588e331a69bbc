#include "proxy/head_writer.hpp"

namespace vane::proxy {

namespace http = boost::beast::http;

namespace {

void version(unsigned v, std::string& out) {
  out += "HTTP/";
  out += static_cast<char>('0' + v / 10);
  out += '.';
  out += static_cast<char>('0' + v % 10);
}

void fields(const http::fields& f, std::string& out) {
  for (const auto& field : f) {
    out += field.name_string();
    out += ": ";
    out += field.value();
    out += "\r\n";
  }
  out += "\r\n";
}

}  // namespace

void write_head(const http::request_header<>& h, std::string& out) {
  out.clear();
  out += h.method_string();
  out += ' ';
  out += h.target();
  out += ' ';
  version(h.version(), out);
  out += "\r\n";
  fields(h, out);
}

void write_head(const http::response_header<>& h, std::string& out) {
  out.clear();
  version(h.version(), out);
  out += ' ';
  unsigned code = h.result_int();
  out += static_cast<char>('0' + code / 100 % 10);
  out += static_cast<char>('0' + code / 10 % 10);
  out += static_cast<char>('0' + code % 10);
  out += ' ';
  out += h.reason();
  out += "\r\n";
  fields(h, out);
}

}  // namespace vane::proxy
