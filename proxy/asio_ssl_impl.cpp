// Asio's SSL layer, compiled once (separate compilation, as
// common/asio_beast_impl.cpp does for Asio and Beast); only vane-proxy links OpenSSL.
#include <boost/asio/ssl/impl/src.hpp>
