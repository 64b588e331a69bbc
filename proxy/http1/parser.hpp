#pragma once
// The HTTP/1.x parser of the request path: Beast's basic_parser (its syntax
// checks, framing rules and limits, exercised by the differential tests),
// with the fields kept as views instead of Beast's allocating `basic_fields`
// container (which cost about a fifth of the proxy's instructions per request:
// a tree of case-insensitive compares and one allocation per field).
//
// The head's views point into the buffers given to put(); read_head() keeps
// the head's bytes in its buffer until the head is whole, then copies them
// once into a store the connection keeps and moves the views there.
// Body bytes come out as pieces: views into the buffer given to put(), valid
// until that buffer is consumed or written to. Trailer fields are dropped.
#include <boost/beast/http/basic_parser.hpp>
#include <vector>

#include "proxy/http1/message.hpp"

namespace vane::proxy {

template <bool isRequest>
class h1_parser final : public boost::beast::http::basic_parser<isRequest> {
 public:
  // `head` and `pieces` belong to the connection (reused across requests).
  h1_parser(message_head& head, std::vector<std::string_view>& pieces) : head_(head), pieces_(pieces) { head_.clear(); }
  message_head& head() noexcept { return head_; }
  // The body bytes found by the latest put() calls since pieces().clear().
  std::vector<std::string_view>& pieces() noexcept { return pieces_; }
  // Moves every view of the head from [from, from + n) to [to, to + n).
  void rebase(const char* from, std::size_t n, const char* to) noexcept;

 private:
  using error_code = boost::system::error_code;
  using string_view = boost::beast::string_view;
  void on_request_impl(boost::beast::http::verb, string_view method, string_view target, int version,
                       error_code&) override;
  void on_response_impl(int code, string_view reason, int version, error_code&) override;
  void on_field_impl(boost::beast::http::field id, string_view name, string_view value, error_code&) override;
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(string_view body, error_code&) override;
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override;
  void on_finish_impl(error_code&) override {}

  message_head& head_;
  std::vector<std::string_view>& pieces_;
};

extern template class h1_parser<true>;
extern template class h1_parser<false>;

}  // namespace vane::proxy
