// The one translation unit that compiles Asio and Beast (separate compilation,
// see the top-level CMakeLists.txt). Every other file includes only headers.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
