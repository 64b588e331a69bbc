#pragma once
// A Beast parser that keeps only what a load generator or a benchmark
// upstream needs (the status or the target, keep-alive, framing) and stores
// no field and no body: nothing is allocated per message. Beast's
// basic_parser does the HTTP/1.1 framing (Content-Length, chunked,
// close-delimited); this class only ignores what it hands over.
#include <boost/beast/http/basic_parser.hpp>

namespace vane::bench {

template <bool IsRequest>
class lean_parser : public boost::beast::http::basic_parser<IsRequest> {
 public:
  unsigned status = 0;
  std::size_t body_bytes = 0;

 private:
  using string_view = boost::beast::string_view;
  using error_code = boost::beast::error_code;
  void on_request_impl(boost::beast::http::verb, string_view, string_view, int, error_code&) override {}
  void on_response_impl(int code, string_view, int, error_code&) override { status = static_cast<unsigned>(code); }
  void on_field_impl(boost::beast::http::field, string_view, string_view, error_code&) override {}
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(string_view body, error_code&) override {
    body_bytes += body.size();
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override {
    body_bytes += body.size();
    return body.size();
  }
  void on_finish_impl(error_code&) override {}
};

}  // namespace vane::bench
