// Writing a streamed reply over TLS, compiled apart from the rest of the
// HTTPS server (see write_streamed in common/http_server_session.hpp).
#include "common/http_server_ops.hpp"
#include "common/https_server_stream.hpp"

namespace vane::http_server_detail {

template boost::asio::awaitable<bool> write_streamed<tls_server_stream>(
    const server_state&, tls_server_stream&, boost::beast::http::response<boost::beast::http::empty_body>&,
    const http_body_stream&);

}  // namespace vane::http_server_detail
