// Asio's SSL layer, compiled once (separate compilation, as
// common/asio_beast_impl.cpp does for Asio and Beast); vane-control does
// not link OpenSSL.
#include <boost/asio/ssl/impl/src.hpp>
