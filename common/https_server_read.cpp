// Reading a request over TLS, compiled apart from the rest of the HTTPS
// server (see read_request in common/http_server_session.hpp).
#include "common/http_server_ops.hpp"
#include "common/https_server_stream.hpp"

namespace vane::http_server_detail {

template boost::asio::awaitable<boost::system::error_code> read_request<tls_server_stream>(
    tls_server_stream&, boost::beast::flat_buffer&,
    boost::beast::http::request_parser<boost::beast::http::string_body>&);

}  // namespace vane::http_server_detail
