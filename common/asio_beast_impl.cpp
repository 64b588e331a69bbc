// The one translation unit that compiles Asio and Beast (separate compilation,
// see the top-level CMakeLists.txt). Every other file includes only headers.
#include <boost/asio/impl/src.hpp>
// GCC 12 with -fsanitize=address (VANE_SANITIZE) takes the boost::none that
// basic_parser::content_length() returns for a missing length for a read of
// an uninitialized optional (-Wmaybe-uninitialized in Beast's own header, a
// false positive): off for Beast's sources here, and only with GCC.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <boost/beast/src.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
