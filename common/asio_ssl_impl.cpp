// Asio's SSL layer, compiled once (separate compilation, as
// common/asio_beast_impl.cpp does for Asio and Beast).
#include <boost/asio/ssl/impl/src.hpp>
