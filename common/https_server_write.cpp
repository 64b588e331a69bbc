// Writing a whole reply over TLS, compiled apart from the rest of the HTTPS
// server (see write_reply in common/http_server_session.hpp).
#include "common/http_server_ops.hpp"
#include "common/https_server_stream.hpp"

namespace vane::http_server_detail {

template boost::asio::awaitable<boost::system::error_code> write_reply<tls_server_stream>(
    tls_server_stream&, boost::beast::http::response<boost::beast::http::string_body>&);

}  // namespace vane::http_server_detail
