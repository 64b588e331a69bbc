// Boost.JSON compiled once: Debian's Boost 1.81 ships it header-only (no
// libboost_json), and src.hpp is the library's own way to build it in one TU.
#include <boost/json/src.hpp>
